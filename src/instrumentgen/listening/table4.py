"""Table 4 (paper Section 4.2) from a webMUSHRA results folder: MUSHRA scores of the S2I trials and MOS
(1–5) of the T2I trials per variant, each a mean with its 95% confidence interval, after ITU-R BS.1534-3
post-screening; pairwise Wilcoxon signed-rank tests with Holm's correction; a box plot.

    python -m instrumentgen.listening.table4 --kit KIT/kit.json [--results RESULTS/<testId>] \\
        --out-dir results/<p>/listening

``kit.json`` (written with the kit) names the conditions, pages and MOS questions:
``{"mushra": {"conditions": [...], "anchor": "anchor", "trials": [...]},
"mos": {"conditions": [...], "questions": [...], "scale": [1, 5], "trials": [...]}}``.
Without a results folder, or where it holds no file of a test, that test's cells read "no ratings yet":
the pipeline runs before anyone has listened.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from instrumentgen.atomic import atomic_path, write_json_atomic
from instrumentgen.listening.stats import REFERENCE, MeanCI, mean_ci, pairwise_wilcoxon, screen_assessors
from instrumentgen.listening.webmushra import LSS_FILE, MUSHRA_FILE, read_lss, read_mushra
from instrumentgen.paper_tables import write_table

NO_RATINGS = "no ratings yet"
MUSHRA_COLUMN = "S2I MUSHRA (0–100)"


@dataclass(frozen=True)
class KitSpec:
    """What a listening-test kit asks (its ``kit.json``)."""

    mushra_conditions: list[str]
    anchor: str
    mushra_trials: list[str]
    mos_conditions: list[str]
    questions: list[str]
    scale: tuple[int, int]
    mos_trials: list[str]

    @classmethod
    def read(cls, path: Path) -> KitSpec:
        try:
            kit = json.loads(Path(path).read_text())
            mushra, mos = kit["mushra"], kit["mos"]
            return cls(
                mushra_conditions=list(mushra["conditions"]),
                anchor=str(mushra["anchor"]),
                mushra_trials=list(mushra["trials"]),
                mos_conditions=list(mos["conditions"]),
                questions=list(mos["questions"]),
                scale=(int(mos["scale"][0]), int(mos["scale"][1])),
                mos_trials=list(mos["trials"]),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"{path}: not a listening-test kit description ({err!r})") from None

    @property
    def mushra_stimuli(self) -> set[str]:
        return {*self.mushra_conditions, self.anchor, REFERENCE}

    def mos_column(self, question: str) -> str:
        return f"T2I MOS {question} ({self.scale[0]}–{self.scale[1]})"


def _cell(ci: MeanCI) -> str:
    if ci.n == 0:
        return "—"
    if math.isnan(ci.low):
        return f"{ci.mean:.1f} (n={ci.n})"
    return f"{ci.mean:.1f} ± {ci.half_width:.1f} (n={ci.n})"


def _scores(ratings: pd.DataFrame, conditions: list[str]) -> dict[str, dict]:
    """Mean and 95% CI of each condition's ``score`` in ``ratings``."""
    return {c: asdict(mean_ci(ratings.loc[ratings["stimulus"] == c, "score"])) for c in conditions}


def _analyse_mushra(kit: KitSpec, path: Path) -> dict[str, Any]:
    ratings = read_mushra(path, kit.mushra_stimuli, set(kit.mushra_trials))
    kept, screening = screen_assessors(ratings)
    kept_ratings = ratings[ratings["participant"].isin(kept)]
    return {
        "participants": len(screening),
        "excluded": screening.loc[screening["excluded"], "participant"].tolist(),
        "screening": screening.to_dict(orient="records"),
        "scores": _scores(kept_ratings, [*kit.mushra_conditions, kit.anchor, REFERENCE]),
        "pairs": pairwise_wilcoxon(kept_ratings, kit.mushra_conditions).to_dict(orient="records"),
        "ratings": kept_ratings[["participant", "trial", "stimulus", "score"]].to_dict(orient="list"),
    }


def _analyse_mos(kit: KitSpec, path: Path) -> dict[str, Any]:
    ratings = read_lss(path, set(kit.mos_conditions), kit.questions, set(kit.mos_trials), kit.scale)
    questions = {}
    for q in kit.questions:
        asked = ratings[ratings["question"] == q]
        questions[q] = {
            "scores": _scores(asked, kit.mos_conditions),
            "pairs": pairwise_wilcoxon(asked, kit.mos_conditions).to_dict(orient="records"),
        }
    return {
        "participants": int(ratings["participant"].nunique()),
        "questions": questions,
        "ratings": ratings[["participant", "trial", "stimulus", "question", "score"]].to_dict(orient="list"),
    }


def analyse(kit: KitSpec, results: Path | None) -> dict[str, Any]:
    """Everything Table 4 reports, as plain data (the metrics JSON, plus the kept ratings)."""
    folder = Path(results) if results is not None and Path(results).is_dir() else None
    out: dict[str, Any] = {"results": str(results) if results is not None else None}
    tests = {"mushra": (MUSHRA_FILE, _analyse_mushra), "mos": (LSS_FILE, _analyse_mos)}
    for test, (name, analyse_file) in tests.items():
        path = folder / name if folder is not None else None
        out[test] = analyse_file(kit, path) if path is not None and path.is_file() else NO_RATINGS
    return out


def _column(scores: dict[str, dict] | None, rows: list[str], rated: list[str]) -> list[str]:
    """Table cells of ``rows`` from a test's ``scores`` (``None``: no ratings yet) of its ``rated``
    conditions; "—" where the test does not play that row."""
    if scores is None:
        return [NO_RATINGS if r in rated else "—" for r in rows]
    return [_cell(MeanCI(**scores[r])) if r in scores and r in rated else "—" for r in rows]


def table_frame(kit: KitSpec, analysis: dict[str, Any]) -> pd.DataFrame:
    """Rows: the variants, then the MUSHRA anchor and hidden reference; one column per test question."""
    rows = list(dict.fromkeys([*kit.mushra_conditions, *kit.mos_conditions, kit.anchor, REFERENCE]))
    frame = pd.DataFrame(index=pd.Index(rows, name="model"))
    mushra, mos = analysis["mushra"], analysis["mos"]
    mushra_rows = [*kit.mushra_conditions, kit.anchor, REFERENCE]
    frame[MUSHRA_COLUMN] = _column(None if mushra == NO_RATINGS else mushra["scores"], rows, mushra_rows)
    for q in kit.questions:
        scores = None if mos == NO_RATINGS else mos["questions"][q]["scores"]
        frame[kit.mos_column(q)] = _column(scores, rows, kit.mos_conditions)
    return frame


def caption(analysis: dict[str, Any]) -> str:
    parts = ["Table 4: listening tests, mean ± 95% confidence half-width (Student's t), number of ratings."]
    mushra = analysis["mushra"]
    if mushra != NO_RATINGS:
        parts.append(
            f"MUSHRA (S2I): {mushra['participants'] - len(mushra['excluded'])} of {mushra['participants']} "
            "participants kept by ITU-R BS.1534-3 post-screening (excluded: hidden reference rated below 90 "
            "in more than 15% of their trials)."
        )
    mos = analysis["mos"]
    if mos != NO_RATINGS:
        parts.append(f"MOS (T2I): {mos['participants']} participants.")
    if mushra == NO_RATINGS and mos == NO_RATINGS:
        where = analysis["results"]
        parts.append(f"No results folder at {where}." if where else "No webMUSHRA results folder given.")
    else:
        parts.append(
            "Pairwise Wilcoxon signed-rank tests with Holm's correction: table4_pairs.csv. Only the "
            "hidden-reference screening rule applies: the anchor is a random-weights model, not a mid-range "
            "anchor; MOS ratings, which have no hidden reference, are not screened."
        )
    return " ".join(parts)


def pairs_frame(kit: KitSpec, analysis: dict[str, Any]) -> pd.DataFrame:
    tables = []
    if analysis["mushra"] != NO_RATINGS:
        tables.append(pd.DataFrame(analysis["mushra"]["pairs"]).assign(test="S2I MUSHRA"))
    if analysis["mos"] != NO_RATINGS:
        for q in kit.questions:
            tables.append(pd.DataFrame(analysis["mos"]["questions"][q]["pairs"]).assign(test=f"T2I MOS {q}"))
    columns = ["test", "a", "b", "n", "n_nonzero", "median_difference", "statistic", "p", "p_holm"]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def box_plot(kit: KitSpec, analysis: dict[str, Any], path: Path) -> None:
    """One panel per test question: the distribution of kept ratings per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("S2I MUSHRA", analysis["mushra"], None, [*kit.mushra_conditions, kit.anchor, REFERENCE])]
    panels += [(f"T2I MOS: {q}", analysis["mos"], q, kit.mos_conditions) for q in kit.questions]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, data, question, conditions) in zip(axes[0], panels, strict=True):
        ax.set_title(title, fontsize=10)
        if data == NO_RATINGS:
            ax.text(0.5, 0.5, NO_RATINGS, ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ratings = pd.DataFrame(data["ratings"])
        if question is not None:
            ratings = ratings[ratings["question"] == question]
        groups = [ratings.loc[ratings["stimulus"] == c, "score"].to_numpy() for c in conditions]
        ax.boxplot(groups, tick_labels=conditions)
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_outputs(
    kit: KitSpec, analysis: dict[str, Any], out_dir: Path, metrics_path: Path | None = None
) -> None:
    """Table 4 (md, tex, csv), its pairwise tests, the box plot, and the metrics JSON (``metrics_path``,
    default ``out_dir/table4.json``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(table_frame(kit, analysis), out_dir / "table4", caption(analysis))
    with atomic_path(out_dir / "table4_pairs.csv", suffix=".csv") as tmp:
        pairs_frame(kit, analysis).to_csv(tmp, index=False)
    box_plot(kit, analysis, out_dir / "table4.png")
    metrics = dict(analysis)
    for test in ("mushra", "mos"):  # the metrics JSON carries the statistics, not every rating
        if isinstance(metrics[test], dict):
            metrics[test] = {k: v for k, v in metrics[test].items() if k != "ratings"}
    write_json_atomic(metrics_path or out_dir / "table4.json", _plain(metrics))


def _plain(value):
    """Strict JSON: NaN → None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kit", type=Path, required=True, help="the kit's kit.json")
    p.add_argument("--results", type=Path, default=None, help="webMUSHRA results/<testId> folder (optional)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--metrics", type=Path, default=None, help="metrics JSON (default: OUT_DIR/table4.json)")
    args = p.parse_args(argv)
    kit = KitSpec.read(args.kit)
    write_outputs(kit, analyse(kit, args.results), args.out_dir, args.metrics)


if __name__ == "__main__":
    main()
