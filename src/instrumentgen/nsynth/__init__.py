"""The NSynth dataset: its metadata conventions, download and extraction."""
