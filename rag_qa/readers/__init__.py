"""Readers turn (question, passages) into an :class:`~rag_qa.types.Answer`; see ``registry``."""
