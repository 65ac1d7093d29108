"""Text-to-instrument prompt files (``workflow/prompts/*.yaml``): load and validate; which NSynth family
a prompt names.

A file holds ``version`` and ``prompts``, a list of ``{id, text, source}``; ``source`` says where a
prompt comes from (``gen-inst``, ``instrumentgen``, ``both``: the authors' sites; ``ours``).

A prompt *names* a family when it contains that family's NSynth name as a word (:data:`FAMILIES`;
``synth_lead`` as "synth lead"), singular or plural, case-insensitive: "a dark electronic bass" names
``bass``, "reedy clarinet" and "warm cello" name none (instrument names are not mapped to families:
that would be our judgement, not the prompt's words), "soft plucked nylon string guitar" names two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from instrumentgen.nsynth.metadata import FAMILIES

SOURCES = ("gen-inst", "instrumentgen", "both", "ours")
_ID = re.compile(r"^[a-z0-9_]+$")
# a family's name as a whole word (words of synth_lead apart by space, "_" or "-"), optional plural
_FAMILY_WORDS = {
    family: re.compile(r"(?<![a-z])" + r"[\s_-]+".join(family.split("_")) + r"(?:e?s)?(?![a-z])")
    for family in FAMILIES
}


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


def named_families(text: str) -> tuple[str, ...]:
    """The NSynth families (in :data:`FAMILIES` order) whose names ``text`` contains as words."""
    lowered = text.lower()
    return tuple(f for f, pattern in _FAMILY_WORDS.items() if pattern.search(lowered))


def named_family(text: str) -> str | None:
    """The one NSynth family ``text`` names, or None when it names none or several."""
    families = named_families(text)
    return families[0] if len(families) == 1 else None
