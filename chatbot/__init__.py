"""Personalised RAG question-answering chatbot."""

__version__ = "0.1.0"
