"""Prompt files: the shipped ones are valid; malformed ones are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from instrumentgen.config import REPO_ROOT
from instrumentgen.prompts import PromptFileError, load_prompts


def test_paper_prompts_are_25_with_the_published_ones_marked():
    prompts = load_prompts(REPO_ROOT / "workflow/prompts/paper.yaml")
    assert len(prompts) == 25
    published = [p for p in prompts if p.source != "ours"]
    assert len(published) == 15
    texts = {p.text for p in published}
    assert {"warm cello", "hammond organ", "aggressive synth lead", "bright acoustic guitar"} <= texts


def test_offline_prompts_use_the_caption_vocabulary():
    from instrumentgen.synth.captions import FAMILY_WORDS

    prompts = load_prompts(REPO_ROOT / "workflow/prompts/offline.yaml")
    families = {w for words in FAMILY_WORDS.values() for w in words}
    assert all(any(f in p.text for f in families) for p in prompts)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("prompts: []", "non-empty list"),
        ("prompts:\n  - {id: a, text: '  ', source: ours}", r"\(a\): empty text"),
        ("prompts:\n  - {id: a, text: x, source: ours}\n  - {id: a, text: y, source: ours}",
         "id 'a' must be unique"),
        ("prompts:\n  - {id: a, text: x, source: web}", "source 'web'"),
        ("prompts:\n  - {id: a, text: x}", "exactly the keys"),
    ],
)
def test_malformed_prompt_files_named(tmp_path: Path, body: str, pattern: str):
    path = tmp_path / "p.yaml"
    path.write_text(body)
    with pytest.raises(PromptFileError, match=pattern):
        load_prompts(path)


def test_missing_file_named(tmp_path: Path):
    with pytest.raises(PromptFileError, match="nope.yaml: prompt file not found"):
        load_prompts(tmp_path / "nope.yaml")
