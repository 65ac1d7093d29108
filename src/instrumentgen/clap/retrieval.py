"""Text→audio retrieval of an :class:`AudioTextEmbedder` on instruments and their captions.

Each instrument's caption is a query. Two rankings by cosine similarity:

- *instrument level*: the candidates are the instruments, each represented by the L2-normalised
  mean of its notes' audio embeddings; recall@k is the share of captions whose instrument
  (or an instrument of the same family) is among the top k;
- *note level*: the candidates are all notes; hit@k is the share of captions with at least one
  note of the right instrument (family) in the top k, precision@k the mean share of such notes.

Every figure comes with its chance value: the expectation under a uniformly random ranking,
computed exactly (hypergeometric) from the candidate counts. Audio→text recall (each
instrument's mean audio embedding ranking the captions) is reported too.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np

from instrumentgen.clap.audio import l2_normalize


def _chance_hit(total: int, relevant: int, k: int) -> float:
    """P(at least one of ``relevant`` items among the top ``k`` of ``total`` in random order)."""
    k = min(k, total)
    return 1.0 - comb(total - relevant, k) / comb(total, k)


def _ranked_hits(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per query, relevance of the candidates in ranked order ``[Q, C]`` (stable on ties)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(relevant, order, axis=1)


def _recall_block(hits: np.ndarray, relevant: np.ndarray, ks: Sequence[int],
                  precision: bool) -> dict[str, float]:
    """Observed and chance hit@k (and precision@k) from ranked relevance ``[Q, C]``."""
    total = hits.shape[1]
    counts = relevant.sum(axis=1)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = float(hits[:, :k].any(axis=1).mean())
        out[f"chance_recall@{k}"] = float(np.mean([_chance_hit(total, int(c), k) for c in counts]))
        if precision:
            out[f"precision@{k}"] = float(hits[:, :k].mean())
            out[f"chance_precision@{k}"] = float(np.mean(counts / total))
    first = hits.argmax(axis=1) + 1  # rank of the first relevant candidate
    out["mean_rank"] = float(first.mean())
    out["mrr"] = float((1.0 / first).mean())
    return out


def retrieval_report(audio_emb: np.ndarray, note_instruments: Sequence[str], note_families: Sequence[str],
                     text_emb: np.ndarray, instruments: Sequence[str], *,
                     ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Retrieval figures for captions ``text_emb [I, D]`` of ``instruments`` over notes ``audio_emb [N, D]``.

    ``note_instruments``/``note_families`` label the notes; every instrument needs notes.
    """
    audio_emb = np.asarray(audio_emb, np.float64)
    text_emb = np.asarray(text_emb, np.float64)
    note_inst = np.asarray(note_instruments)
    note_fam = np.asarray(note_families)
    instruments = list(instruments)
    if not len(audio_emb) == len(note_inst) == len(note_fam) or len(text_emb) != len(instruments):
        raise ValueError("mismatched lengths of embeddings and labels")
    absent = [i for i in instruments if not (note_inst == i).any()]
    if absent:
        raise ValueError(f"instruments without notes: {absent[:5]}")
    family_of = {i: str(note_fam[note_inst == i][0]) for i in instruments}
    inst_fam = np.array([family_of[i] for i in instruments])
    means = l2_normalize(np.stack([audio_emb[note_inst == i].mean(axis=0) for i in instruments]))
    scores = text_emb @ means.T.astype(np.float64)  # [I queries, I candidates]
    same_inst = np.eye(len(instruments), dtype=bool)
    same_fam = inst_fam[:, None] == inst_fam[None, :]
    note_scores = text_emb @ audio_emb.T  # [I, N]
    note_same_inst = np.array(instruments)[:, None] == note_inst[None, :]
    note_same_fam = inst_fam[:, None] == note_fam[None, :]
    a2t = scores.T  # instrument audio → captions
    ranked = np.argsort(-scores, axis=1, kind="stable")
    queries = [{"instrument": inst, "rank": int(np.flatnonzero(ranked[q] == q)[0]) + 1,
                "top5": [instruments[j] for j in ranked[q, :5]]} for q, inst in enumerate(instruments)]
    return {
        "notes": int(len(note_inst)), "instruments": len(instruments), "families": int(len(set(inst_fam))),
        "text_to_audio": {
            "instrument_level": {
                "instrument": _recall_block(_ranked_hits(scores, same_inst), same_inst, ks, precision=False),
                "family": _recall_block(_ranked_hits(scores, same_fam), same_fam, ks, precision=False),
            },
            "note_level": {
                "instrument": _recall_block(_ranked_hits(note_scores, note_same_inst), note_same_inst, ks,
                                            precision=True),
                "family": _recall_block(_ranked_hits(note_scores, note_same_fam), note_same_fam, ks,
                                        precision=True),
            },
        },
        "audio_to_text": {"instrument": _recall_block(_ranked_hits(a2t, same_inst), same_inst, ks,
                                                      precision=False)},
        "queries": queries,
    }
