"""Tables 2 and 3 of the paper (and a metrics JSON) from cached CLAP embeddings.

    python -m instrumentgen.metrics.evaluate --reference data/<p>/features/clap_audio/valid.parquet \\
        data/<p>/features/clap_audio/test.parquet --test data/<p>/features/clap_audio/test.parquet \\
        [--reconstruction data/<p>/evaluation/clap/reconstruction_test.parquet] \\
        --prompts data/<p>/features/clap_text/prompts.parquet \\
        --train data/<p>/features/clap_audio/train.parquet --seed 1234 \\
        --s2i baseline=data/<p>/features/generated/baseline/s2i/clap.parquet ... \\
        --t2i baseline=data/<p>/features/generated/baseline/t2i/clap.parquet ... \\
        [--vggish-test data/<p>/evaluation/vggish/test.parquet \\
         --vggish-reconstruction data/<p>/evaluation/vggish/reconstruction_test.parquet \\
         --vggish-s2i baseline=... --vggish-t2i baseline=...] \\
        --vggish-unavailable "n/a offline" --out-dir results/<p>/evaluate

**Table 2 (S2I)**: per variant, FAD (VGGish, CLAP) of its S2I notes against the test set, s_CLAP*
(eq. 10) against the test notes of the same cells, TC_CLAP* (eq. 8), instrument retrieval and condition
sensitivity (:mod:`instrumentgen.metrics.timbre`); reference rows for the test set itself and the
codec's reconstruction of it (the ceiling). The paper generates "all other samples" from the query
note: every S2I score, on every row, leaves out each test instrument's query cell
(:func:`instrumentgen.generate.protocols.s2i_queries` with ``--seed``, the seed generation used).
Retrieval of the test set itself is trivial and shown as "—". **Table 3 (T2I)**: FAD of the T2I
instruments against the test set, TC_CLAP*, s_CLAP* naive / translation / coloration, family accuracy
(a classifier fitted on the ``--train`` split's notes; its accuracy on the test notes is the ceiling, in
the caption) and condition sensitivity (the real test notes' and the reconstruction's in the caption).
``A_11,*`` and the T2I templates ``M_1,*`` come from the ``--reference`` sets (valid + test, paper
Section 3.2). FAD-VGGish compares the VGGish frames (T = 4 per 4 s note) of each set with those of the
test set (``--vggish-*``); without VGGish embeddings the column says so (``--vggish-unavailable``)
instead of showing a number from random weights.

Writes ``table2.{md,tex,csv}``, ``table3.{md,tex,csv}``, ``figure2.{png,svg}`` (Figure 2 for one prompt,
on the first T2I variant's instrument), ``metrics.json`` and ``details.json`` (per instrument) into
``--out-dir``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instrumentgen.atomic import write_json_atomic
from instrumentgen.generate.protocols import s2i_queries
from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity, cell_mask, tc_score
from instrumentgen.metrics.clap_score import Templates, s2i_score, t2i_scores
from instrumentgen.metrics.embed_notes import read_embeddings
from instrumentgen.metrics.frechet import MetricInputError, fad
from instrumentgen.metrics.timbre import (
    FamilyClassifier,
    condition_sensitivity,
    family_accuracy,
    instrument_retrieval,
    prompt_family,
    read_family_notes,
)
from instrumentgen.paper_tables import write_table
from instrumentgen.variant_args import parse_pairs

log = logging.getLogger(__name__)
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
DEFAULT_SEED = 1234  # instrumentgen.generate's default --seed


def load_ensemble(path: Path, label: str) -> Ensemble:
    notes, z = read_embeddings(path)
    return Ensemble(notes, z, label)


def merge(ensembles: list[Ensemble], label: str) -> Ensemble:
    """One ensemble of several sets (instrument names must not collide)."""
    notes = pd.concat([e.notes for e in ensembles], ignore_index=True)
    dims = {e.dim for e in ensembles}
    if len(dims) > 1:
        raise MetricInputError(f"{label}: embedding dimensions differ between the sets: {sorted(dims)}")
    return Ensemble(notes, np.concatenate([e.z for e in ensembles]), label)


@dataclass(frozen=True)
class FamilyReference:
    """The T2I family classifier and its ceiling: accuracy on the real test notes, chance (1 / the
    families it knows) and the test notes' majority-family share."""

    classifier: FamilyClassifier
    test_accuracy: float
    chance: float
    majority_share: float

    @classmethod
    def fit(cls, train: Path, test: Path) -> FamilyReference:
        classifier = FamilyClassifier.fit(*read_family_notes(train), label=str(train))
        z, families = read_family_notes(test)
        _, counts = np.unique(families, return_counts=True)
        return cls(
            classifier, classifier.accuracy(z, families), 1 / len(classifier.families),
            float(counts.max() / counts.sum()),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier.description,
            "fitted_on": "train split (real notes)",
            "train_notes": self.classifier.n_train,
            "families": len(self.classifier.families),
            "test_accuracy": self.test_accuracy,
            "chance": self.chance,
            "test_majority_share": self.majority_share,
        }


@dataclass(frozen=True)
class References:
    """The ground truth an evaluation compares against. ``s2i_truth`` is the test set without each
    instrument's S2I query cell (``queries``: instrument, pitch, velocity), what S2I rows are scored on."""

    test: Ensemble
    affinity: ReferenceAffinity
    templates: Templates
    queries: pd.DataFrame
    s2i_truth: Ensemble
    family: FamilyReference | None = None

    @classmethod
    def build(cls, reference: Ensemble, test: Ensemble, seed: int, family: FamilyReference | None = None):
        queries = s2i_queries(test.notes, seed, instrument_column="instrument")
        truth = test.without(queries, "test set")
        lonely = sorted(set(test.instrument_names()) - set(truth.instrument_names()))
        if lonely:
            raise MetricInputError(
                f"test set: instrument {lonely[0]} has no cell besides its S2I query cell: nothing to score"
            )
        return cls(test, ReferenceAffinity.fit(reference), Templates.fit(reference), queries, truth, family)

    def leave_out_queries(self, generated: Ensemble) -> Ensemble:
        """A generated S2I set without the query cells (the paper generates "all other samples")."""
        return generated.without(self.queries)


class VGGishSets:
    """VGGish frames ``[N * E, 128]`` of the test set, for FAD-VGGish against it (None: not computed)."""

    def __init__(self, test: Path | None, reconstruction: Path | None, s2i: dict[str, Path],
                 t2i: dict[str, Path]) -> None:
        if test is None and (reconstruction or s2i or t2i):
            raise ValueError("--vggish-reconstruction/--vggish-s2i/--vggish-t2i need --vggish-test")
        self.test_path = test
        self.test = None if test is None else self.frames(test, "test set (VGGish)")
        self._s2i_test: np.ndarray | None = None  # the test frames without the S2I query cells, read once
        self.paths = {"codec reconstruction": reconstruction, **{("s2i", v): p for v, p in s2i.items()},
                      **{("t2i", v): p for v, p in t2i.items()}}

    @staticmethod
    def frames(path: Path, label: str, leave_out: pd.DataFrame | None = None) -> np.ndarray:
        """The frames ``[N * E, D]`` of a VGGish embeddings file (embed_notes --embedder vggish), without
        the notes of the cells ``leave_out`` (instrument, pitch, velocity) if given."""
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        kind = meta.get(b"feature", b"?").decode()
        notes, z = read_embeddings(path)
        if kind != "vggish" or z.ndim != 3:
            raise MetricInputError(
                f"{label}: {path} holds {kind!r} embeddings of shape {z.shape}, not VGGish frames [N, E, 128]"
            )
        if leave_out is not None:
            z = z[~cell_mask(notes, leave_out)]
        return z.reshape(-1, z.shape[-1])

    def check(self, s2i: dict[str, Path], t2i: dict[str, Path], reconstruction: bool) -> None:
        """Every set of the tables has VGGish embeddings when the test set has."""
        if self.test is None:
            return
        wanted = [("s2i", v) for v in s2i] + [("t2i", v) for v in t2i]
        wanted += ["codec reconstruction"] if reconstruction else []
        missing = [k for k in wanted if self.paths.get(k) is None]
        if missing:
            raise ValueError(f"--vggish-test is given but these sets have no VGGish embeddings: {missing}")
        unused = [k for k, p in self.paths.items() if p is not None and k not in wanted]
        if unused:
            raise ValueError(f"VGGish embeddings given for sets the tables do not have: {unused}")

    def fad(self, key: Any, label: str, queries: pd.DataFrame | None = None) -> float | None:
        """FAD-VGGish of set ``key`` against the test set; S2I sets (``queries`` given) leave the query
        cells out of both."""
        if self.test is None:
            return None
        if queries is not None and self._s2i_test is None:  # one evaluation has one set of query cells
            self._s2i_test = self.frames(self.test_path, "test set (VGGish)", queries)
        test = self.test if queries is None else self._s2i_test
        if key == "ground truth":
            return fad(test, test, ("test set (VGGish)", label))
        return fad(test, self.frames(self.paths[key], label, queries), ("test set (VGGish)", label))


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m instrumentgen.metrics.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--reference", type=Path, nargs="+", required=True, help="CLAP audio caches for A_11,*")
    p.add_argument("--test", type=Path, required=True, help="CLAP audio cache of the test split")
    p.add_argument("--reconstruction", type=Path, help="CLAP embeddings of the codec's reconstruction")
    p.add_argument("--prompts", type=Path, help="CLAP text cache of the T2I prompts (with --t2i)")
    p.add_argument(
        "--train", type=Path,
        help="CLAP audio cache of the train split: fits the T2I family classifier (without it, no family "
        "accuracy)",
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED,
        help=f"the seed S2I generation drew its query notes with (default {DEFAULT_SEED}, generation's)",
    )
    p.add_argument("--s2i", nargs="*", default=[], help="VARIANT=embeddings of its S2I notes")
    p.add_argument("--t2i", nargs="*", default=[], help="VARIANT=embeddings of its T2I notes")
    p.add_argument("--vggish-test", type=Path, help="VGGish embeddings of the test split (FAD-VGGish)")
    p.add_argument("--vggish-reconstruction", type=Path, help="VGGish embeddings of the reconstruction")
    p.add_argument("--vggish-s2i", nargs="*", default=[], help="VARIANT=VGGish embeddings of its S2I notes")
    p.add_argument("--vggish-t2i", nargs="*", default=[], help="VARIANT=VGGish embeddings of its T2I notes")
    p.add_argument(
        "--vggish-unavailable", default="n/a", help="what the FAD-VGGish column says without VGGish"
    )
    p.add_argument("--figure-prompt", help="prompt id of Figure 2 (default: the first T2I prompt)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--metrics", type=Path, help="metrics JSON (default: OUT_DIR/metrics.json)")
    return p.parse_args(argv)


def read_prompts(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Text embeddings ``[D]`` and texts of the prompts, by prompt id."""
    from instrumentgen.features.cache import read_features

    meta, values = read_features(path)
    table = meta.to_pandas()
    if "id" not in table.columns:
        raise MetricInputError(f"{path} is not a CLAP text cache of prompts (no 'id' column)")
    ids = [str(i) for i in table["id"]]
    texts = table["text"].astype(str).tolist() if "text" in table.columns else ids
    embeddings = {i: np.asarray(v, dtype=np.float64) for i, v in zip(ids, values, strict=True)}
    return embeddings, dict(zip(ids, texts, strict=True))


def figure(refs: References, generated: Ensemble, text: dict, texts: dict, prompt: str | None, out: Path):
    """Figure 2 for ``prompt`` (default: the first) over the cells of its generated instrument."""
    from instrumentgen.metrics.figure2 import plot_figure2

    instruments = {inst.name: inst for inst in generated.instruments()}
    prompt = prompt or sorted(instruments)[0]
    if prompt not in instruments:
        raise MetricInputError(
            f"Figure 2: prompt {prompt!r} has no generated instrument in {generated.label}"
        )
    return plot_figure2(
        text[prompt], instruments[prompt], refs.templates, refs.affinity, texts.get(prompt, prompt), out
    )


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


def table3_caption(refs: References, texts: dict[str, str], reference: dict[str, float | None]) -> str:
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
            f"{refs.family.chance:.4f}."
        )
    shown = "; ".join(f"{k} {format_value(v, NOT_DEFINED)}" for k, v in reference.items())
    return (
        f"Table 3: T2I (prompts). {family} Sensitivity: mean CLAP cosine between the notes of one cell "
        f"generated for different prompts (lower: the prompt changes the output more); on all test "
        f"cells, between instruments: {shown}."
    )


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    s2i, t2i = parse_pairs(args.s2i, "--s2i"), parse_pairs(args.t2i, "--t2i")
    if not s2i and not t2i:
        raise ValueError("nothing to evaluate: give --s2i and/or --t2i")
    if t2i and args.prompts is None:
        raise ValueError("--t2i needs --prompts (the prompts' CLAP text embeddings)")
    vggish = VGGishSets(
        args.vggish_test,
        args.vggish_reconstruction,
        parse_pairs(args.vggish_s2i, "--vggish-s2i"),
        parse_pairs(args.vggish_t2i, "--vggish-t2i"),
    )
    vggish.check(s2i, t2i, args.reconstruction is not None)
    reference = merge([load_ensemble(p, str(p)) for p in args.reference], "reference (A_11,*)")
    test = load_ensemble(args.test, "test set")
    family = FamilyReference.fit(args.train, args.test) if t2i and args.train is not None else None
    refs = References.build(reference, test, args.seed, family)
    log.info("reference: %d instruments, %d cells", refs.affinity.n_instruments, len(refs.affinity.cells))
    log.info("S2I scores leave out %d query cells (seed %d)", len(refs.queries), args.seed)
    na = args.vggish_unavailable
    queries = refs.queries
    table2: dict[str, dict] = {
        "ground truth (test set)": s2i_row(
            refs, refs.s2i_truth, vggish.fad("ground truth", "test set", queries), retrieval=False
        )
    }
    recon = None
    if args.reconstruction is not None:
        recon = load_ensemble(args.reconstruction, "reconstruction")
        table2["codec reconstruction"] = s2i_row(
            refs, refs.leave_out_queries(recon),
            vggish.fad("codec reconstruction", "reconstruction (VGGish)", queries),
        )
    for variant, path in s2i.items():
        table2[variant] = s2i_row(
            refs,
            refs.leave_out_queries(load_ensemble(path, f"{variant} S2I")),
            vggish.fad(("s2i", variant), f"{variant} S2I (VGGish)", queries),
        )
    table3: dict[str, dict] = {}
    texts: dict[str, str] = {}
    t2i_reference = {"ground truth (test set)": condition_sensitivity(test).value}
    if recon is not None:
        t2i_reference["codec reconstruction"] = condition_sensitivity(recon).value
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if t2i:
        text, texts = read_prompts(args.prompts)
        for variant, path in t2i.items():
            generated = load_ensemble(path, f"{variant} T2I")
            table3[variant] = t2i_row(
                refs, generated, text, texts, vggish.fad(("t2i", variant), f"{variant} T2I (VGGish)")
            )
            if len(table3) == 1:
                figure(refs, generated, text, texts, args.figure_prompt, args.out_dir / "figure2")
    write_table(
        table_frame(table2, TABLE2_COLUMNS, na), args.out_dir / "table2", table2_caption(refs, args.seed)
    )
    if table3:
        write_table(
            table_frame(table3, TABLE3_COLUMNS, na), args.out_dir / "table3",
            table3_caption(refs, texts, t2i_reference),
        )
    n_test = len(refs.test.instrument_names())
    timbre = {
        "s2i_query_cells_left_out": len(queries),
        "seed": args.seed,
        "retrieval_chance": 1 / n_test,
        "test_instruments": n_test,
        "family_classifier": None if refs.family is None else refs.family.as_dict(),
        "t2i_reference_sensitivity": t2i_reference,
    }
    metrics = {
        "s2i": {k: {c: v[c] for c in TABLE2_COLUMNS} for k, v in table2.items()},
        "t2i": {k: {c: v[c] for c in TABLE3_COLUMNS} for k, v in table3.items()},
        "fad_vggish": "VGGish (torchvggish weights)" if vggish.test is not None else na,
        "reference": {"instruments": refs.affinity.n_instruments, "cells": int(len(refs.affinity.cells))},
        "timbre": timbre,
    }
    write_json_atomic(args.metrics or args.out_dir / "metrics.json", metrics)
    details = {
        "s2i": table2, "t2i": table3, "timbre": timbre,
        "s2i_queries": queries[["instrument", "pitch", "velocity"]].to_dict(orient="records"),
    }
    write_json_atomic(args.out_dir / "details.json", details)
    return metrics


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        evaluate(args)
    except (ValueError, OSError) as err:  # MetricInputError, FeatureError, missing files
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
