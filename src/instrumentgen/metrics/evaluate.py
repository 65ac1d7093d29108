"""Tables 2 and 3 of the paper (and a metrics JSON) from cached CLAP embeddings.

    python -m instrumentgen.metrics.evaluate --reference data/<p>/features/clap_audio/valid.parquet \\
        data/<p>/features/clap_audio/test.parquet --test data/<p>/features/clap_audio/test.parquet \\
        [--reconstruction data/<p>/evaluation/clap/reconstruction_test.parquet] \\
        --prompts data/<p>/features/clap_text/prompts.parquet \\
        --s2i baseline=data/<p>/features/generated/baseline/s2i/clap.parquet ... \\
        --t2i baseline=data/<p>/features/generated/baseline/t2i/clap.parquet ... \\
        [--vggish-test data/<p>/evaluation/vggish/test.parquet \\
         --vggish-reconstruction data/<p>/evaluation/vggish/reconstruction_test.parquet \\
         --vggish-s2i baseline=... --vggish-t2i baseline=...] \\
        --vggish-unavailable "n/a offline" --out-dir results/<p>/evaluate

**Table 2 (S2I)**: per variant, FAD (VGGish, CLAP) of its S2I notes against the test set, s_CLAP*
(eq. 10) against the test notes of the same cells, TC_CLAP* (eq. 8); reference rows for the test set
itself and the codec's reconstruction of it. **Table 3 (T2I)**: FAD of the T2I instruments against the
test set, TC_CLAP*, and s_CLAP* naive / translation / coloration. ``A_11,*`` and the T2I templates
``M_1,*`` come from the ``--reference`` sets (valid + test, paper Section 3.2). FAD-VGGish compares the
VGGish frames (T = 4 per 4 s note) of each set with those of the test set (``--vggish-*``); without
VGGish embeddings the column says so (``--vggish-unavailable``) instead of showing a number from
random weights.

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

from instrumentgen.atomic import atomic_path, write_json_atomic
from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity, tc_score
from instrumentgen.metrics.clap_score import Templates, s2i_score, t2i_scores
from instrumentgen.metrics.embed_notes import read_embeddings
from instrumentgen.metrics.frechet import MetricInputError, fad

log = logging.getLogger(__name__)
TABLE2_COLUMNS = ["FAD-VGGish", "FAD-CLAP", "s_CLAP*", "TC_CLAP*"]
TABLE3_COLUMNS = [
    "FAD-VGGish",
    "FAD-CLAP",
    "TC_CLAP*",
    "s_CLAP* naive",
    "s_CLAP* translation",
    "s_CLAP* coloration",
]
DIRECTION = {"FAD-VGGish": "↓", "FAD-CLAP": "↓", "TC_CLAP*": "↑"}  # s_CLAP* columns: ↑


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
class References:
    """The ground truth an evaluation compares against."""

    test: Ensemble
    affinity: ReferenceAffinity
    templates: Templates


class VGGishSets:
    """VGGish frames ``[N * E, 128]`` of the test set, for FAD-VGGish against it (None: not computed)."""

    def __init__(self, test: Path | None, reconstruction: Path | None, s2i: dict[str, Path],
                 t2i: dict[str, Path]) -> None:
        if test is None and (reconstruction or s2i or t2i):
            raise ValueError("--vggish-reconstruction/--vggish-s2i/--vggish-t2i need --vggish-test")
        self.test = None if test is None else self.frames(test, "test set (VGGish)")
        self.paths = {"codec reconstruction": reconstruction, **{("s2i", v): p for v, p in s2i.items()},
                      **{("t2i", v): p for v, p in t2i.items()}}

    @staticmethod
    def frames(path: Path, label: str) -> np.ndarray:
        """The frames ``[N * E, D]`` of a VGGish embeddings file (embed_notes --embedder vggish)."""
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        kind = meta.get(b"feature", b"?").decode()
        notes, z = read_embeddings(path)
        if kind != "vggish" or z.ndim != 3:
            raise MetricInputError(
                f"{label}: {path} holds {kind!r} embeddings of shape {z.shape}, not VGGish frames [N, E, 128]"
            )
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

    def fad(self, key: Any, label: str) -> float | None:
        if self.test is None:
            return None
        if key == "ground truth":
            return fad(self.test, self.test, ("test set (VGGish)", label))
        return fad(self.test, self.frames(self.paths[key], label), ("test set (VGGish)", label))


def check_coverage(generated: Ensemble, expected: set[str], what: str) -> None:
    """Every expected instrument (test instrument, prompt) has generated notes in ``generated``: a
    partial generation must not silently average over fewer instruments."""
    missing = sorted(expected - set(generated.notes["instrument"]))
    if missing:
        raise MetricInputError(
            f"{generated.label}: {len(missing)} {what} have no generated cells "
            f"(first: {', '.join(missing[:3])}); regenerate them before evaluating"
        )


def s2i_row(refs: References, generated: Ensemble, vggish: float | None) -> dict[str, Any]:
    s_value, s_per = s2i_score(refs.test, generated)  # names a generated instrument the test set lacks
    check_coverage(generated, set(refs.test.notes["instrument"]), "test instruments")
    tc_value, tc_per = tc_score(refs.affinity, generated)
    return {
        "FAD-VGGish": vggish,
        "FAD-CLAP": fad(refs.test.z, generated.z, (refs.test.label, generated.label)),
        "s_CLAP*": s_value,
        "TC_CLAP*": tc_value,
        "n_notes": len(generated.notes),
        "n_instruments": len(s_per),
        "per_instrument": {
            s.instrument: {"s_CLAP*": s.value, "TC_CLAP*": t.value, "cells": s.n_cells}
            for s, t in zip(s_per, tc_per, strict=True)
        },
    }


def t2i_row(refs: References, generated: Ensemble, text: dict[str, np.ndarray], vggish: float | None) -> dict:
    check_coverage(generated, set(text), "prompts")
    tc_value, tc_per = tc_score(refs.affinity, generated)
    scores = t2i_scores(text, generated, refs.templates, refs.affinity)
    row = {
        "FAD-VGGish": vggish,
        "FAD-CLAP": fad(refs.test.z, generated.z, (refs.test.label, generated.label)),
        "TC_CLAP*": tc_value,
        **{f"s_CLAP* {m}": v for m, v in scores.as_dict().items()},
        "n_notes": len(generated.notes),
        "n_instruments": len(tc_per),
    }
    row["per_instrument"] = {
        t.instrument: {"TC_CLAP*": t.value, **{m: getattr(scores, m)[1][i].value for m in scores.as_dict()}}
        for i, t in enumerate(tc_per)
    }
    return row


def format_value(value: float | None, na: str) -> str:
    if value is None:
        return na
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


def table_frame(rows: dict[str, dict], columns: list[str], na: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        [[format_value(row[c], na) for c in columns] for row in rows.values()],
        index=pd.Index(list(rows), name="model"),
        columns=[f"{c} {DIRECTION.get(c, '↑')}" for c in columns],
    )
    return frame


def write_table(frame: pd.DataFrame, stem: Path, caption: str) -> None:
    """``stem``.md / .tex / .csv, each atomically."""
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


def parse_pairs(values: list[str], flag: str) -> dict[str, Path]:
    out = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag} takes VARIANT=PATH, got {value!r}")
        if name in out:
            raise ValueError(f"{flag}: variant {name!r} given twice")
        out[name] = Path(path)
    return out


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
    refs = References(test, ReferenceAffinity.fit(reference), Templates.fit(reference))
    log.info("reference: %d instruments, %d cells", refs.affinity.n_instruments, len(refs.affinity.cells))
    na = args.vggish_unavailable
    table2: dict[str, dict] = {
        "ground truth (test set)": s2i_row(refs, test, vggish.fad("ground truth", "test set"))
    }
    if args.reconstruction is not None:
        table2["codec reconstruction"] = s2i_row(
            refs, load_ensemble(args.reconstruction, "reconstruction"),
            vggish.fad("codec reconstruction", "reconstruction (VGGish)"),
        )
    for variant, path in s2i.items():
        table2[variant] = s2i_row(
            refs,
            load_ensemble(path, f"{variant} S2I"),
            vggish.fad(("s2i", variant), f"{variant} S2I (VGGish)"),
        )
    table3: dict[str, dict] = {}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if t2i:
        text, texts = read_prompts(args.prompts)
        for variant, path in t2i.items():
            generated = load_ensemble(path, f"{variant} T2I")
            table3[variant] = t2i_row(
                refs, generated, text, vggish.fad(("t2i", variant), f"{variant} T2I (VGGish)")
            )
            if len(table3) == 1:
                figure(refs, generated, text, texts, args.figure_prompt, args.out_dir / "figure2")
    write_table(table_frame(table2, TABLE2_COLUMNS, na), args.out_dir / "table2", "Table 2: S2I (test set)")
    if table3:
        write_table(
            table_frame(table3, TABLE3_COLUMNS, na), args.out_dir / "table3", "Table 3: T2I (prompts)"
        )
    metrics = {
        "s2i": {k: {c: v[c] for c in TABLE2_COLUMNS} for k, v in table2.items()},
        "t2i": {k: {c: v[c] for c in TABLE3_COLUMNS} for k, v in table3.items()},
        "fad_vggish": "VGGish (torchvggish weights)" if vggish.test is not None else na,
        "reference": {"instruments": refs.affinity.n_instruments, "cells": int(len(refs.affinity.cells))},
    }
    write_json_atomic(args.metrics or args.out_dir / "metrics.json", metrics)
    write_json_atomic(args.out_dir / "details.json", {"s2i": table2, "t2i": table3})
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
