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
import sys
from pathlib import Path
from typing import Any

import numpy as np

from instrumentgen.atomic import write_json_atomic
from instrumentgen.metrics.affinity import Ensemble
from instrumentgen.metrics.frechet import MetricInputError
from instrumentgen.metrics.references import FamilyReference, References, load_ensemble, merge
from instrumentgen.metrics.table_format import (
    NOT_DEFINED,
    TABLE2_COLUMNS,
    TABLE3_COLUMNS,
    table2_caption,
    table3_caption,
    table_frame,
)
from instrumentgen.metrics.table_rows import s2i_row, t2i_row
from instrumentgen.metrics.timbre import condition_sensitivity
from instrumentgen.metrics.vggish_sets import VGGishSets
from instrumentgen.paper_tables import write_table
from instrumentgen.variant_args import parse_pairs

__all__ = ["NOT_DEFINED", "TABLE2_COLUMNS", "TABLE3_COLUMNS", "evaluate", "main", "parse_args"]

# The parts (the docstring above is the command's --help): metrics.references (test set, A_11,*, family
# classifier), metrics.vggish_sets (FAD-VGGish), metrics.table_rows (the scores of one row),
# metrics.table_format (columns, values as text, captions); this module reads the command line and
# writes the files.
log = logging.getLogger(__name__)
DEFAULT_SEED = 1234  # instrumentgen.generate's default --seed


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


def load_references(args: argparse.Namespace, t2i: bool) -> References:
    """The reference sets, the test set and (for T2I, with ``--train``) the family classifier."""
    reference = merge([load_ensemble(p, str(p)) for p in args.reference], "reference (A_11,*)")
    test = load_ensemble(args.test, "test set")
    family = FamilyReference.fit(args.train, args.test) if t2i and args.train is not None else None
    refs = References.build(reference, test, args.seed, family)
    log.info("reference: %d instruments, %d cells", refs.affinity.n_instruments, len(refs.affinity.cells))
    log.info("S2I scores leave out %d query cells (seed %d)", len(refs.queries), args.seed)
    return refs


def s2i_table(
    refs: References, s2i: dict[str, Path], reconstruction: Path | None, vggish: VGGishSets
) -> tuple[dict[str, dict], Ensemble | None]:
    """Table 2's rows (the test set, the codec's reconstruction if given, each variant) and the
    reconstruction's embeddings (None without)."""
    queries = refs.queries
    table2: dict[str, dict] = {
        "ground truth (test set)": s2i_row(
            refs, refs.s2i_truth, vggish.fad("ground truth", "test set", queries), retrieval=False
        )
    }
    recon = None
    if reconstruction is not None:
        recon = load_ensemble(reconstruction, "reconstruction")
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
    return table2, recon


def t2i_table(
    args: argparse.Namespace, refs: References, t2i: dict[str, Path], vggish: VGGishSets
) -> tuple[dict[str, dict], dict[str, str]]:
    """Table 3's rows (one per variant) and the prompts' texts; Figure 2 on the first variant."""
    table3: dict[str, dict] = {}
    texts: dict[str, str] = {}
    if t2i:
        text, texts = read_prompts(args.prompts)
        for variant, path in t2i.items():
            generated = load_ensemble(path, f"{variant} T2I")
            table3[variant] = t2i_row(
                refs, generated, text, texts, vggish.fad(("t2i", variant), f"{variant} T2I (VGGish)")
            )
            if len(table3) == 1:
                figure(refs, generated, text, texts, args.figure_prompt, args.out_dir / "figure2")
    return table3, texts


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
    refs = load_references(args, bool(t2i))
    table2, recon = s2i_table(refs, s2i, args.reconstruction, vggish)
    t2i_reference = {"ground truth (test set)": condition_sensitivity(refs.test).value}
    if recon is not None:
        t2i_reference["codec reconstruction"] = condition_sensitivity(recon).value
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table3, texts = t2i_table(args, refs, t2i, vggish)
    na = args.vggish_unavailable
    write_table(
        table_frame(table2, TABLE2_COLUMNS, na), args.out_dir / "table2", table2_caption(refs, args.seed)
    )
    if table3:
        write_table(
            table_frame(table3, TABLE3_COLUMNS, na), args.out_dir / "table3",
            table3_caption(refs, texts, t2i_reference, table3),
        )
    return write_metrics(args, refs, table2, table3, t2i_reference, vggish)


def write_metrics(
    args: argparse.Namespace, refs: References, table2: dict[str, dict], table3: dict[str, dict],
    t2i_reference: dict[str, float | None], vggish: VGGishSets,
) -> dict[str, Any]:
    """Write ``metrics.json`` (the tables' values) and ``details.json`` (per instrument, the S2I query
    cells); returns the metrics."""
    n_test = len(refs.test.instrument_names())
    timbre = {
        "s2i_query_cells_left_out": len(refs.queries),
        "seed": args.seed,
        "retrieval_chance": 1 / n_test,
        "test_instruments": n_test,
        "family_classifier": None if refs.family is None else refs.family.as_dict(),
        "t2i_reference_sensitivity": t2i_reference,
        "t2i_family_ceiling_at_cells": {
            k: {"accuracy": v["family_ceiling_at_cells"], "notes": v["family_ceiling_notes"]}
            for k, v in table3.items()
        },
    }
    metrics = {
        "s2i": {k: {c: v[c] for c in TABLE2_COLUMNS} for k, v in table2.items()},
        "t2i": {k: {c: v[c] for c in TABLE3_COLUMNS} for k, v in table3.items()},
        "fad_vggish": "VGGish (torchvggish weights)" if vggish.test is not None else args.vggish_unavailable,
        "reference": {"instruments": refs.affinity.n_instruments, "cells": int(len(refs.affinity.cells))},
        "timbre": timbre,
    }
    write_json_atomic(args.metrics or args.out_dir / "metrics.json", metrics)
    details = {
        "s2i": table2, "t2i": table3, "timbre": timbre,
        "s2i_queries": refs.queries[["instrument", "pitch", "velocity"]].to_dict(orient="records"),
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
