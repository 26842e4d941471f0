"""Evaluation: SQuAD metrics, reader, retrieval and open-domain evaluation."""
