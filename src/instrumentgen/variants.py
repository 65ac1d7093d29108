"""The four model variants of the paper (Sections 2.4 and 4): a CLAP pairing scheme and an objective."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    scheme: str  # CLAP pairing scheme: baseline | random | fixed
    objective: str  # ar (causal, delay pattern) | magnet (non-causal, masked)


VARIANTS: dict[str, Variant] = {
    "baseline": Variant("baseline", "baseline", "ar"),
    "random": Variant("random", "random", "ar"),
    "fixed": Variant("fixed", "fixed", "ar"),
    "magnet": Variant("magnet", "baseline", "magnet"),
}


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a ValueError lists the valid names otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}") from None
