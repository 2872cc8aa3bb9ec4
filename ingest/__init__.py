"""Ingestion jobs: read, chunk, understand and embed content into the store."""
