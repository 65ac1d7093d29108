"""Codec language model: MusicGen-style delay pattern (more to come)."""
