"""Text-to-instrument prompt files (``workflow/prompts/*.yaml``): load and validate.

A file holds ``version`` and ``prompts``, a list of ``{id, text, source}``; ``source`` says where a
prompt comes from (``gen-inst``, ``instrumentgen``, ``both``: the authors' sites; ``ours``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

SOURCES = ("gen-inst", "instrumentgen", "both", "ours")
_ID = re.compile(r"^[a-z0-9_]+$")


class PromptFileError(ValueError):
    """A prompt file that is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    source: str


def load_prompts(path: str | Path) -> list[Prompt]:
    """Read and validate a prompt file (unique ids, non-empty texts, known sources)."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"{path}: prompt file not found")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("prompts")
    if not isinstance(entries, list) or not entries:
        raise PromptFileError(f"{path}: expected a non-empty list under 'prompts'")
    prompts, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: prompt #{i + 1}"
        if not isinstance(entry, dict) or set(entry) != {"id", "text", "source"}:
            raise PromptFileError(f"{where}: expected exactly the keys id, text, source; got {entry!r}")
        pid, text, source = entry["id"], entry["text"], entry["source"]
        if not isinstance(pid, str) or not _ID.match(pid) or pid in seen:
            raise PromptFileError(f"{where}: id {pid!r} must be unique and match [a-z0-9_]+")
        if not isinstance(text, str) or not text.strip():
            raise PromptFileError(f"{where} ({pid}): empty text")
        if source not in SOURCES:
            raise PromptFileError(f"{where} ({pid}): source {source!r} is not one of {list(SOURCES)}")
        seen.add(pid)
        prompts.append(Prompt(pid, text.strip(), source))
    return prompts
