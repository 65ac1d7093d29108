"""Checks of user-given values shared across the package: one home for each, one wording of its error.

Every check raises :class:`ValueError` naming the value (``name`` is what the user wrote: a params key
such as ``train.batch_size``, a flag such as ``--grid``) and what it got.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable


def is_int(value: object) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is an ``int`` in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for real numbers (ints and floats, NumPy's too), False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def int_at_least(name: str, value: object, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) ``>= minimum``; else a ValueError."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) ``>= 1``; else a ValueError."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def int_in_range(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) in ``[low, high]``; else a ValueError."""
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return int(value)


def plain_number(value: numbers.Real) -> int | float:
    """A NumPy scalar as the Python ``int`` or ``float`` it holds; Python numbers unchanged (an ``int``
    stays an ``int``, so settings written as ``1`` keep their JSON form)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def number_at_least(name: str, value: object, minimum: float, *, strict: bool = False) -> int | float:
    """``value`` as a plain Python number (:func:`plain_number`) when it is a real number (not a bool)
    ``>= minimum`` (``> minimum`` when ``strict``); else a ValueError. NaN is rejected."""
    if not is_number(value) or not (value > minimum if strict else value >= minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return plain_number(value)


def number_in_range(
    name: str, value: object, low: float, high: float, *, high_inclusive: bool = True
) -> int | float:
    """``value`` as a plain Python number (:func:`plain_number`) when it is a real number (not a bool) in
    ``[low, high]`` (``[low, high)`` unless ``high_inclusive``), e.g. a probability or a dropout rate; else
    a ValueError. NaN is rejected."""
    if not is_number(value) or not (low <= value <= high if high_inclusive else low <= value < high):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value!r}")
    return plain_number(value)


def known_keys(what: str, keys: Iterable[str], known: Iterable[str]) -> None:
    """A ValueError listing the ``keys`` not in ``known`` (``unknown train settings: stepz; known: ...``)."""
    known = set(known)
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def json_object(text: str, name: str) -> dict:
    """The JSON object in ``text`` (a command-line flag's value); a ValueError names ``name`` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {text!r}")
    return value
