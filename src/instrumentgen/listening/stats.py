"""Statistics of listening-test ratings: ITU-R BS.1534-3 post-screening, means with 95% confidence
intervals, and pairwise Wilcoxon signed-rank tests with Holm's correction.

Ratings come as a long table (``participant``, ``trial``, ``stimulus``, ``score``; see
:mod:`instrumentgen.listening.webmushra`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from instrumentgen.listening.webmushra import REFERENCE

SCREEN_SCORE = 90.0  # BS.1534-3: a hidden reference rated below 90 ...
SCREEN_SHARE = 0.15  # ... in more than 15% of the test items excludes the assessor


def screen_assessors(ratings: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """BS.1534-3 post-screening of MUSHRA ``ratings``: the participants kept, and one row per participant
    with the share of their trials whose hidden reference they rated below 90 and whether they are
    excluded (share > 15%)."""
    ref = ratings[ratings["stimulus"] == REFERENCE]
    share = (ref["score"] < SCREEN_SCORE).groupby(ref["participant"]).mean()
    participants = sorted(ratings["participant"].unique())
    table = pd.DataFrame(
        {
            "participant": participants,
            "trials": [int((ref["participant"] == p).sum()) for p in participants],
            "reference_below_90": [float(share.get(p, math.nan)) for p in participants],
        }
    )
    # A participant who never rated a hidden reference cannot be screened: excluded, and said so.
    table["excluded"] = ~(table["reference_below_90"] <= SCREEN_SHARE)
    return table.loc[~table["excluded"], "participant"].tolist(), table


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` ratings and its 95% confidence interval (Student's t, as BS.1534-3 §9.3)."""

    n: int
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_ci(scores: np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean and ``confidence`` interval of ``scores`` ``[n]`` (t distribution with n − 1 degrees of
    freedom; NaN bounds for fewer than 2 scores or no spread)."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan)
    mean = float(scores.mean())
    if n < 2:
        return MeanCI(n, mean, math.nan, math.nan)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * scores.std(ddof=1) / math.sqrt(n))
    return MeanCI(n, mean, mean - half, mean + half)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down: the i-th smallest times ``m − i``, kept monotone,
    capped at 1), in the order given. scipy has no Holm correction, so it is written out here."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def pairwise_wilcoxon(ratings: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank tests between every pair of ``conditions``, each on the ratings
    both got from the same participant in the same trial, Holm-corrected over the pairs. One row per
    pair: ``a``, ``b``, ``n`` (paired ratings), ``n_nonzero`` (those that differ: scipy's default drops
    zero differences), ``median_difference`` (a − b), ``statistic``, ``p``, ``p_holm``. A pair with no
    non-zero difference gets p = 1."""
    wide = ratings.pivot_table(
        index=["participant", "trial"], columns="stimulus", values="score", aggfunc="first"
    ).reindex(columns=conditions)
    rows = []
    for a, b in itertools.combinations(conditions, 2):
        pair = wide[[a, b]].dropna()
        diff = (pair[a] - pair[b]).to_numpy(dtype=float)
        if np.any(diff != 0):
            result = stats.wilcoxon(pair[a].to_numpy(float), pair[b].to_numpy(float), alternative="two-sided")
            statistic, p = float(result.statistic), float(result.pvalue)
        else:
            statistic, p = math.nan, 1.0
        rows.append(
            {
                "a": a,
                "b": b,
                "n": len(diff),
                "n_nonzero": int(np.count_nonzero(diff)),  # the pairs the test ranks (zeros dropped)
                "median_difference": float(np.median(diff)) if len(diff) else math.nan,
                "statistic": statistic,
                "p": p,
            }
        )
    table = pd.DataFrame(rows, columns=["a", "b", "n", "n_nonzero", "median_difference", "statistic", "p"])
    table["p_holm"] = holm(table["p"].tolist()) if len(table) else []
    return table
