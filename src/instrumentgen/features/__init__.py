"""Frozen-encoder features cached for training: codec codes, CLAP embeddings, reference notes."""
