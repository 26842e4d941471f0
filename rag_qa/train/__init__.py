"""Fine-tuning extractive readers (span heads) on SQuAD-style data."""
