"""The rows of Tables 2 (S2I) and 3 (T2I): every score of one generated set, with its per-instrument
details (``details.json``)."""

from __future__ import annotations

import numpy as np

from instrumentgen.metrics.affinity import Ensemble, tc_score
from instrumentgen.metrics.clap_score import s2i_score, t2i_scores
from instrumentgen.metrics.frechet import MetricInputError, fad
from instrumentgen.metrics.references import References
from instrumentgen.metrics.timbre import condition_sensitivity, family_accuracy, instrument_retrieval


def check_coverage(generated: Ensemble, expected: set[str], what: str) -> None:
    """Every expected instrument (test instrument, prompt) has generated notes in ``generated``: a
    partial generation must not silently average over fewer instruments."""
    missing = sorted(expected - set(generated.notes["instrument"]))
    if missing:
        raise MetricInputError(
            f"{generated.label}: {len(missing)} {what} have no generated cells "
            f"(first: {', '.join(missing[:3])}); regenerate them before evaluating"
        )


def s2i_row(refs: References, generated: Ensemble, vggish: float | None, retrieval: bool = True) -> dict:
    """The Table 2 row of an S2I set already without its query cells (:meth:`References.leave_out_queries`);
    ``retrieval=False`` for the test set itself (trivial)."""
    truth = refs.s2i_truth
    s_value, s_per = s2i_score(truth, generated)  # names a generated instrument the test set lacks
    check_coverage(generated, set(truth.notes["instrument"]), "test instruments")
    tc_value, tc_per = tc_score(refs.affinity, generated)
    found = instrument_retrieval(truth, generated) if retrieval else None
    sensitivity = condition_sensitivity(generated)
    per = {
        s.instrument: {
            "s_CLAP*": s.value, "TC_CLAP*": t.value, "cells": s.n_cells, "A_11 projected": t.projected
        }
        for s, t in zip(s_per, tc_per, strict=True)
    }
    for hit in found.per_instrument if found else []:
        per[hit.instrument].update(
            {"nearest instrument": hit.nearest, "cosine to own": hit.cosine_own,
             "cosine to nearest": hit.cosine_nearest, "rank of own": hit.rank}
        )
    return {
        "FAD-VGGish": vggish,
        "FAD-CLAP": fad(truth.z, generated.z, (truth.label, generated.label)),
        "s_CLAP*": s_value,
        "TC_CLAP*": tc_value,
        "retrieval": found.value if found else None,
        "sensitivity": sensitivity.value,
        "sensitivity_cells": sensitivity.n_cells,
        "n_notes": len(generated.notes),
        "n_instruments": len(s_per),
        "per_instrument": per,
    }


def t2i_row(
    refs: References, generated: Ensemble, text: dict[str, np.ndarray], texts: dict[str, str],
    vggish: float | None,
) -> dict:
    """The Table 3 row of a T2I set (instruments named by prompt id; ``texts``: the prompts' texts)."""
    check_coverage(generated, set(text), "prompts")
    tc_value, tc_per = tc_score(refs.affinity, generated)
    scores = t2i_scores(text, generated, refs.templates, refs.affinity)
    family = None if refs.family is None else family_accuracy(refs.family.classifier, generated, texts)
    ceiling, ceiling_notes = (None, 0) if family is None else refs.family.accuracy_at(family.scored_cells)
    sensitivity = condition_sensitivity(generated)
    row = {
        "FAD-VGGish": vggish,
        "FAD-CLAP": fad(refs.test.z, generated.z, (refs.test.label, generated.label)),
        "TC_CLAP*": tc_value,
        **{f"s_CLAP* {m}": v for m, v in scores.as_dict().items()},
        "family accuracy": None if family is None else family.value,
        "sensitivity": sensitivity.value,
        "sensitivity_cells": sensitivity.n_cells,
        "family_prompts": None if family is None else family.n_prompts,
        "family_notes": None if family is None else family.n_notes,
        "family_ceiling_at_cells": ceiling,
        "family_ceiling_notes": ceiling_notes,
        "n_notes": len(generated.notes),
        "n_instruments": len(tc_per),
    }
    row["per_instrument"] = {
        t.instrument: {"TC_CLAP*": t.value, **{m: getattr(scores, m)[1][i].value for m in scores.as_dict()}}
        for i, t in enumerate(tc_per)
    }
    for prompt, score in (family.per_prompt if family else {}).items():
        row["per_instrument"][prompt].update(
            {"family": score.family, "family status": score.status, "family accuracy": score.accuracy,
             "predicted families": score.predicted}
        )
    return row
