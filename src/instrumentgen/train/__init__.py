"""Training of the codec language model."""
