"""Command-line arguments that name one file per variant: ``VARIANT=PATH``."""

from __future__ import annotations

from pathlib import Path


def parse_pairs(values: list[str] | None, flag: str) -> dict[str, Path]:
    """``["baseline=a.parquet", ...]`` → ``{"baseline": Path("a.parquet"), ...}`` in the given order; a
    malformed or repeated variant is a ValueError naming ``flag``."""
    out = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} takes VARIANT=PATH, got {value!r}")
        if name in out:
            raise ValueError(f"{flag}: variant {name!r} given twice")
        out[name] = Path(path)
    return out
