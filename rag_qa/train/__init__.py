"""Fine-tuning extractive readers (span heads) on SQuAD-style data.

Imports only its own modules and the leaves (``rag_qa.qa_data``, ``rag_qa.squad_metrics``,
``rag_qa.spans``, ``rag_qa.models``), so it runs where LangChain, FAISS and Gradio are not
installed (``rag_qa.train.gpu``); the command line is ``rag_qa.cli.train``.
"""
