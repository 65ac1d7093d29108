"""A results table of the paper in three formats: Markdown (README, report), LaTeX (a paper) and CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from instrumentgen.atomic import atomic_path


def write_table(frame: pd.DataFrame, stem: Path, caption: str) -> None:
    """``stem``.md / .tex / .csv of ``frame`` (``caption`` above the Markdown and in the LaTeX), each
    written atomically; ↑ / ↓ in column names become LaTeX arrows."""
    outputs = {
        ".md": f"{caption}\n\n{frame.to_markdown()}\n",
        ".tex": frame.to_latex(caption=caption, escape=True)
        .replace("↓", r"$\downarrow$")
        .replace("↑", r"$\uparrow$"),
        ".csv": frame.to_csv(),
    }
    for suffix, text in outputs.items():
        with atomic_path(stem.with_suffix(suffix), suffix=suffix) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
