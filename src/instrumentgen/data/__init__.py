"""Data phase: prune NSynth-format splits to the 88 piano keys and resample to the codec rate."""
