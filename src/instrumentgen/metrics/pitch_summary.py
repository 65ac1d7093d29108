"""The pitch-accuracy results of every variant and task side by side: a CSV table, a JSON file and a
bar chart (share of generated notes within ±50 cents; the target line is 85%, for every variant).

    python -m instrumentgen.metrics.pitch_summary --reports R1.json R2.json ... --table T.csv \\
        --json S.json --figure F.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from instrumentgen.atomic import atomic_path, write_json_atomic
from instrumentgen.metrics.pitch import TARGET_SHARE
from instrumentgen.variants import get_variant

COLUMNS = [
    "variant",
    "task",
    "decoder",
    "n_notes",
    "n_within",
    "share_within",
    "n_unvoiced",
    "median_abs_cents",
    "target",
    "meets_target",
]


def summary_table(reports: list[dict]) -> pd.DataFrame:
    """One row per report; the target (85% of notes within ±50 cents) holds for every variant, AR and
    MAGNeT alike; ``decoder`` is the variant's objective."""
    rows = []
    for r in reports:
        rows.append(
            {
                "variant": r["variant"],
                "task": r["task"],
                "decoder": get_variant(r["variant"]).objective,
                "n_notes": r["n_notes"],
                "n_within": r["n_within"],
                "share_within": round(r["share_within"], 4),
                "n_unvoiced": r["n_unvoiced"],
                "median_abs_cents": r["median_abs_cents"],
                "target": TARGET_SHARE,
                "meets_target": bool(r["share_within"] >= TARGET_SHARE),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _plain(value):
    """JSON-safe scalar: NaN → None (strict JSON, as DVC metrics want)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def draw(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pivot = table.pivot(index="variant", columns="task", values="share_within")
    pivot = pivot.reindex([v for v in dict.fromkeys(table["variant"])])
    ax = pivot.plot.bar(figsize=(6, 3.5), rot=0, ylim=(0, 1))
    ax.axhline(TARGET_SHARE, color="k", linestyle="--", linewidth=1, label=f"target {TARGET_SHARE:.0%}")
    ax.set_ylabel("notes within ±50 cents")
    ax.set_title("Pitch accuracy of generated notes")
    ax.legend(loc="lower right", fontsize=8)
    with atomic_path(path, suffix=".png") as tmp:
        ax.figure.tight_layout()
        ax.figure.savefig(tmp, dpi=120, format="png")
    plt.close(ax.figure)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m instrumentgen.metrics.pitch_summary", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--reports", type=Path, nargs="+", required=True)
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--figure", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        reports = [json.loads(p.read_text()) for p in args.reports]
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: cannot read a pitch report: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    table = summary_table(reports)
    with atomic_path(args.table, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    write_json_atomic(
        args.json,
        {
            f"{row['variant']}/{row['task']}": {k: _plain(v) for k, v in row.items()}
            for row in table.to_dict(orient="records")
        },
    )
    draw(table, args.figure)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
