"""The companion page: every generated instrument (and the S2I ground truth) with audio players,
spectrograms and a playable Web Audio keyboard, as static files (``python -m instrumentgen.companion``).
"""
