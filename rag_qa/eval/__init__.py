"""Evaluation on SQuAD-format data: a reader on gold paragraphs, retrieval and the whole chain over a
corpus built from the file (scores from :mod:`rag_qa.squad_metrics`, examples from :mod:`rag_qa.qa_data`)."""
