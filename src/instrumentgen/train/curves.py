"""Loss curves of the trained variants: one figure (validation and training loss against step) and a
summary table (final validation loss and per-codebook accuracy per variant).

    python -m instrumentgen.train.curves --runs results/tiny/train --variants baseline random fixed magnet \
        --figure results/tiny/train/loss_curves.png --table results/tiny/train/summary.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from instrumentgen.atomic import atomic_path  # noqa: E402
from instrumentgen.lm.objective import get_objective  # noqa: E402
from instrumentgen.variants import get_variant  # noqa: E402


def read_curves(runs: Path, variants: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``{variant: (train, valid)}`` curves read from ``runs/<variant>/{train,valid}.csv``."""
    curves = {}
    for variant in variants:
        folder = runs / variant
        frames = []
        for name in ("train.csv", "valid.csv"):
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"no {name} for variant {variant} in {folder}")
            frame = pd.read_csv(path)
            if frame.empty or "loss" not in frame:
                raise ValueError(f"{path} has no loss rows")
            frames.append(frame)
        curves[variant] = (frames[0], frames[1])
    return curves


def plot_curves(curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]], out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for i, (variant, (train, valid)) in enumerate(curves.items()):
        color = f"C{i}"
        axes[0].plot(train["step"], train["loss"], color=color, label=variant)
        axes[1].plot(valid["step"], valid["loss"], color=color, marker="o", ms=3, label=variant)
        if "loss_inference" in valid:
            axes[1].plot(valid["step"], valid["loss_inference"], color=color, ls="--", marker="x", ms=3)
    axes[0].set_title("training loss (with condition dropout)")
    axes[1].set_title("validation loss (all conditions; dashed: family/source nulled)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[1].legend()
    fig.tight_layout()
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def summary_table(curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """The last validation row of each variant with its objective: loss and per-stage ``ce_k`` / ``acc_k``,
    with all conditions and under inference conditions (``*_inference``)."""
    rows = []
    for variant, (_, valid) in curves.items():
        last = valid.iloc[-1]
        objective = get_objective(get_variant(variant).objective)
        row = {
            "variant": variant,
            "objective": objective.label,
            "steps": int(last["step"]),
            "valid_loss": float(last["loss"]),
        }
        if "loss_inference" in valid:
            row["valid_loss_inference"] = float(last["loss_inference"])
        row.update({c: float(last[c]) for c in valid.columns if c.startswith(("ce_", "acc_"))})
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--figure", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True)
    args = p.parse_args(argv)
    curves = read_curves(args.runs, args.variants)
    plot_curves(curves, args.figure)
    with atomic_path(args.table, suffix=".csv") as tmp:
        summary_table(curves).to_csv(tmp, index=False, float_format="%.5g")


if __name__ == "__main__":
    main()
