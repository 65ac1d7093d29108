"""Evaluation metrics of generated instruments (paper Section 3, and our pitch accuracy)."""
