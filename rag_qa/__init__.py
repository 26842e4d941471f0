"""rag-qa: offline-first retrieval-augmented question answering over your own documents.

``config``/``env``/``models`` (settings, offline defaults, model resolution); ``store`` (one
reader/writer protocol, ``faiss`` and ``pg`` backends); ``retrieval``, ``chain``, ``service`` (the
one path from a question to an answer); ``readers`` (extractive, generative); leaf modules
``squad_metrics``, ``qa_data``, ``spans``; ``train`` and ``eval``; ``cli`` (``python -m rag_qa``,
one module per command).  Nothing here imports ``ingest`` or ``ui``, which build on this package.
"""

__version__ = "0.1.0"
