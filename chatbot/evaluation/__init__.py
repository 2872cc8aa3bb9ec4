"""Offline evaluation: retrieval and answer quality of the real pipeline against baselines.

``chatbot eval DATASET_DIR`` indexes a dataset's documents into a throwaway store, runs every
question through the real pipeline and through the baselines (plain LlamaIndex and plain BM25),
and writes ``report.json``, ``report.md`` and plots. See ``docs/evaluation.md``.
"""
