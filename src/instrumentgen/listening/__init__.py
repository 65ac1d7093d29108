"""Listening tests (paper Section 4.2, Table 4): MUSHRA for S2I and MOS for T2I, run with webMUSHRA."""
