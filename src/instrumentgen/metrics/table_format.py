"""Tables 2 and 3 as text: their columns, the formatting of their values and their captions."""

from __future__ import annotations

import math

import pandas as pd

from instrumentgen.metrics.references import References
from instrumentgen.metrics.timbre import prompt_family

TABLE2_COLUMNS = ["FAD-VGGish", "FAD-CLAP", "s_CLAP*", "TC_CLAP*", "retrieval", "sensitivity"]
TABLE3_COLUMNS = [
    "FAD-VGGish",
    "FAD-CLAP",
    "TC_CLAP*",
    "s_CLAP* naive",
    "s_CLAP* translation",
    "s_CLAP* coloration",
    "family accuracy",
    "sensitivity",
]
DIRECTION = {"FAD-VGGish": "↓", "FAD-CLAP": "↓", "sensitivity": "↓"}  # the others: ↑
NOT_DEFINED = "—"  # what a table shows for a statistic a row cannot have (FAD-VGGish: --vggish-unavailable)


def format_value(value: float | None, na: str) -> str:
    if value is None:
        return na
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


def table_frame(rows: dict[str, dict], columns: list[str], na: str) -> pd.DataFrame:
    """The rows' ``columns`` as text; a missing value reads ``na`` for FAD-VGGish, else "—"."""
    frame = pd.DataFrame(
        [
            [format_value(row[c], na if c == "FAD-VGGish" else NOT_DEFINED) for c in columns]
            for row in rows.values()
        ],
        index=pd.Index(list(rows), name="model"),
        columns=[f"{c} {DIRECTION.get(c, '↑')}" for c in columns],
    )
    return frame


def table2_caption(refs: References, seed: int) -> str:
    k = len(refs.test.instrument_names())
    return (
        f"Table 2: S2I (test set). Every score leaves out each test instrument's query cell, the note "
        f"its instrument is generated from (seed {seed}), on every row. Retrieval: share of generated "
        f"instruments whose mean CLAP embedding is nearest (cosine) to their own instrument's centroid "
        f"among the K = {k} test instruments; chance 1/K = {1 / k:.4f}; trivial for the test set "
        f"itself ({NOT_DEFINED}). Sensitivity: mean CLAP cosine between the notes of one cell generated "
        f"for different instruments (lower: the query changes the output more)."
    )


def ceiling_at_cells(table3: dict[str, dict]) -> str:
    """The caption's sentence on the family ceiling where the rows' notes were scored (the same for
    every row when the variants share the T2I grid)."""
    values = {(row["family_ceiling_at_cells"], row["family_ceiling_notes"]) for row in table3.values()}
    if len(values) == 1:
        value, notes = values.pop()
        where = f"{format_value(value, NOT_DEFINED)} ({notes} notes)"
    else:
        where = "; ".join(
            f"{v}: {format_value(row['family_ceiling_at_cells'], NOT_DEFINED)} "
            f"({row['family_ceiling_notes']} notes)" for v, row in table3.items()
        )
    return (
        "On the real test notes of each scored prompt's family at the cells (pitch, velocity) "
        f"generated for it, where a family's real notes are fewer, its accuracy is {where}."
    )


def table3_caption(
    refs: References, texts: dict[str, str], reference: dict[str, float | None], table3: dict[str, dict]
) -> str:
    if refs.family is None:
        family = f"Family accuracy: {NOT_DEFINED} (no train split given for the family classifier)."
    else:
        known = refs.family.classifier.families
        scored = sum(prompt_family(t, known)[0] is not None for t in texts.values())
        family = (
            f"Family accuracy: share of the notes of the {scored} of {len(texts)} prompts that name one "
            f"NSynth family which a {refs.family.classifier.description}, fitted on the train split, assigns "
            f"to that family (other prompts are not scored); the classifier's accuracy on the real test "
            f"notes is {refs.family.test_accuracy:.4f} (ceiling), chance 1/{len(known)} = "
            f"{refs.family.chance:.4f}. {ceiling_at_cells(table3)}"
        )
    shown = "; ".join(f"{k} {format_value(v, NOT_DEFINED)}" for k, v in reference.items())
    return (
        f"Table 3: T2I (prompts). {family} Sensitivity: mean CLAP cosine between the notes of one cell "
        f"generated for different prompts (lower: the prompt changes the output more); on all test "
        f"cells, between instruments: {shown}."
    )
