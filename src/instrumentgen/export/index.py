"""Reading an export index (``index.json`` of the export rule: instrument → its folder, files and counts)."""

from __future__ import annotations

import json
from pathlib import Path


def read_index(path: str | Path) -> dict[str, dict]:
    """The ``instruments`` of the export index at ``path`` (instrument → its entry, e.g. ``demo_wav``),
    or a ValueError naming the file."""
    try:
        return json.loads(Path(path).read_text())["instruments"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a readable export index ({type(err).__name__}: {err})") from None
