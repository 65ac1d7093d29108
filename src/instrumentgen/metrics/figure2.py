"""Figure 2 of the paper for one T2I prompt: the covariance ``Z_1,k^T Z_1,k / N`` of the synthesised
reference ensemble by (a) naive replication, (b) translation, (c) coloration (= ``A_11,*``), and (d) the
cosine similarity of the prompt's text embedding to every cell template, whose maximum is
``(rho_hat, nu_hat)``. Cells are ordered by pitch, then velocity, as in the paper.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from instrumentgen.atomic import atomic_path  # noqa: E402
from instrumentgen.metrics.affinity import Instrument, ReferenceAffinity  # noqa: E402
from instrumentgen.metrics.clap_score import Templates, t2i_reference, unit  # noqa: E402


def covariances(
    z_text: np.ndarray, inst: Instrument, templates: Templates, affinity: ReferenceAffinity
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The three ``[n, n]`` covariances (naive, translation, coloration) on the cells of ``inst`` that
    the reference covers, and those cells ``[n, 2]``."""
    _, keep = t2i_reference("translation", z_text, inst, templates, affinity)
    used = inst.subset(keep)
    out = {}
    for method in ("naive", "translation", "coloration"):
        z1, _ = t2i_reference(method, z_text, used, templates, affinity)
        out[method] = z1 @ z1.T / len(z1)
    return out, used.cells


def cosine_grid(z_text: np.ndarray, templates: Templates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosines ``[n_velocities, n_pitches]`` of the text embedding to the templates (NaN where the reference
    has no such cell), with the pitch and velocity axes."""
    cos = templates.cosine_map(unit(z_text, "prompt text embedding"))
    pitches, velocities = np.unique(templates.cells[:, 0]), np.unique(templates.cells[:, 1])
    grid = np.full((len(velocities), len(pitches)), np.nan)
    for (p, v), c in zip(templates.cells, cos, strict=True):
        grid[np.searchsorted(velocities, v), np.searchsorted(pitches, p)] = c
    return grid, pitches, velocities


def plot_figure2(
    z_text: np.ndarray,
    inst: Instrument,
    templates: Templates,
    affinity: ReferenceAffinity,
    prompt: str,
    out_stem: Path,
) -> list[Path]:
    """Write ``out_stem``.png and .svg; returns their paths."""
    covs, cells = covariances(z_text, inst, templates, affinity)
    grid, pitches, velocities = cosine_grid(z_text, templates)
    best = templates.cells[templates.closest(unit(z_text, "prompt text embedding"))]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    vmax = max(float(c.max()) for c in covs.values())
    for ax, (label, name) in zip(
        axes[:3], [("a", "naive"), ("b", "translation"), ("c", "coloration")], strict=True
    ):
        im = ax.imshow(covs[name], cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"({label}) {name}")
        ax.set_xlabel(f"{len(cells)} cells (pitch, then velocity)")
    fig.colorbar(im, ax=axes[:3], shrink=0.8, label="covariance")
    ax = axes[3]
    im = ax.imshow(
        grid,
        aspect="auto",
        origin="lower",
        cmap="magma",
        interpolation="nearest",
        extent=(pitches[0] - 0.5, pitches[-1] + 0.5, -0.5, len(velocities) - 0.5),
    )
    ax.set_yticks(range(len(velocities)), [str(v) for v in velocities])
    ax.plot(best[0], np.searchsorted(velocities, best[1]), "c*", markersize=12, label="(ρ̂, ν̂)")
    ax.set_xlabel("pitch (MIDI)")
    ax.set_ylabel("velocity")
    ax.set_title(f"(d) cosine to text, best {best[0]}/{best[1]}")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"Figure 2 — prompt: {prompt}")
    paths = []
    for suffix in (".png", ".svg"):
        path = out_stem.with_suffix(suffix)
        with atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=110)
        paths.append(path)
    plt.close(fig)
    return paths
