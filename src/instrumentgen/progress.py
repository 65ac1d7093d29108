"""Progress bars for long work: tqdm on stderr, throttled when stderr is a log file.

Snakemake rules send stderr to their ``log:`` file; a bar updating ten times a second would write
hundreds of thousands of carriage-return lines there over an hours-long download, so outside a
terminal the bar updates at most every ``LOG_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` writing to stderr, throttled when stderr is not a terminal."""
    kwargs.setdefault("file", sys.stderr)
    if not getattr(kwargs["file"], "isatty", lambda: False)():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(iterable, **kwargs)
