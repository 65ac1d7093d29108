"""Does the timbre follow the condition? Instrument retrieval (S2I), family accuracy (T2I) and condition
sensitivity, on unit CLAP audio embeddings (float64).

- **Instrument retrieval** (S2I, :func:`instrument_retrieval`): a generated instrument's embedding is the
  mean of its notes' unit embeddings; among the centroids (mean unit embedding) of all ``K``
  ground-truth instruments, the one with the highest cosine to it is its *nearest*. A hit when that is
  the instrument it was generated from. Value: the share of hits; chance ``1/K``.
- **Family accuracy** (T2I, :func:`family_accuracy`): for each prompt that names exactly one NSynth
  family (:func:`instrumentgen.prompts.named_family`), the share of its generated notes that a family
  classifier (:class:`FamilyClassifier`, fitted on the train split's real notes) assigns to that family.
  Value: hits over all notes of those prompts. A prompt naming none (or several) is not scored, and says
  so, rather than counting as a miss.
- **Condition sensitivity** (:func:`condition_sensitivity`): for every (pitch, velocity) cell that at
  least two instruments of a set have, the mean pairwise cosine between those instruments' notes of that
  cell; value: the mean over those cells. 1 when the condition changes nothing; lower = the condition
  changes the output more. On real notes it is the level that different instruments reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from instrumentgen.metrics.affinity import CELL_COLUMNS, Ensemble, check_same_dim, normalise_rows
from instrumentgen.metrics.frechet import MetricInputError, check_embeddings
from instrumentgen.nsynth.metadata import FAMILIES
from instrumentgen.prompts import named_families

# Chosen on the tiny profile's valid split among nearest centroid, LDA, kNN and logistic regression
# (benchmarks/family_classifier.py, benchmarks/results/family_classifier_tiny.json).
FAMILY_CLASSIFIER = "standardized logistic regression (C=0.01) on unit CLAP audio embeddings"
FAMILY_C = 0.01


# ---------------------------------------------------------------- instrument retrieval (S2I)
@dataclass(frozen=True)
class RetrievalHit:
    """One generated instrument: the ground-truth instrument nearest to it, its cosine to its own and to
    that nearest centroid, and the rank of its own (1 = a hit)."""

    instrument: str
    nearest: str
    cosine_own: float
    cosine_nearest: float
    rank: int


@dataclass(frozen=True)
class Retrieval:
    """Share of generated instruments nearest to their own ground truth; ``chance`` = 1 / candidates."""

    value: float
    chance: float
    n_candidates: int
    per_instrument: list[RetrievalHit]


def centroids(ensemble: Ensemble) -> tuple[list[str], np.ndarray]:
    """Instrument names (sorted) and their unit mean embeddings ``[K, D]``."""
    names, means = [], []
    for inst in ensemble.instruments():
        names.append(inst.name)
        means.append(inst.z.mean(axis=0))
    return names, normalise_rows(np.array(means).reshape(len(means), ensemble.dim))


def instrument_retrieval(truth: Ensemble, generated: Ensemble) -> Retrieval:
    """Instrument retrieval of every generated instrument (named as the ground-truth instrument it was
    generated from) among all instruments of ``truth``."""
    check_same_dim(truth, generated)
    names, truth_c = centroids(truth)
    if len(names) < 2:
        raise MetricInputError(
            f"{truth.label}: instrument retrieval needs at least 2 instruments to choose from, "
            f"it has {len(names)}"
        )
    index = {n: i for i, n in enumerate(names)}
    gen_names, gen_c = centroids(generated)
    if not gen_names:
        raise MetricInputError(f"{generated.label}: no generated instruments")
    hits = []
    for name, g in zip(gen_names, gen_c, strict=True):
        if name not in index:
            raise MetricInputError(f"{generated.label}: instrument {name} is not in {truth.label}")
        cos = truth_c @ g
        own, nearest = cos[index[name]], int(np.argmax(cos))
        hits.append(
            RetrievalHit(name, names[nearest], float(own), float(cos[nearest]), 1 + int((cos > own).sum()))
        )
    value = float(np.mean([h.nearest == h.instrument for h in hits]))
    return Retrieval(value, 1.0 / len(names), len(names), hits)


# ---------------------------------------------------------------- condition sensitivity
@dataclass(frozen=True)
class Sensitivity:
    """Mean over cells of the mean pairwise cosine between instruments (None: no cell is shared by two
    instruments), over ``n_cells`` cells shared by ``n_instruments`` instruments in all."""

    value: float | None
    n_cells: int
    n_instruments: int


def condition_sensitivity(ensemble: Ensemble) -> Sensitivity:
    """Condition sensitivity of a set whose instruments differ only by their condition."""
    per_cell = []
    table = ensemble.notes[CELL_COLUMNS].copy()
    table["row"] = np.arange(len(table))
    for _, group in table.groupby(CELL_COLUMNS, sort=True):
        m = len(group)  # one note per instrument and cell (Ensemble refuses duplicates)
        if m < 2:
            continue
        s = ensemble.z[group["row"].to_numpy()].sum(axis=0)
        per_cell.append((float(s @ s) - m) / (m * (m - 1)))  # sum over i != j of z_i . z_j, averaged
    value = float(np.mean(per_cell)) if per_cell else None
    return Sensitivity(value, len(per_cell), ensemble.notes["instrument"].nunique())


# ---------------------------------------------------------------- family accuracy (T2I)
def read_family_notes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``[N, D]`` and NSynth family names ``[N]`` of a split's CLAP audio cache."""
    z, cells = read_family_cells(path)
    return z, cells["family"].to_numpy()


def read_family_cells(path: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Embeddings ``[N, D]`` of a split's CLAP audio cache and its notes' ``family`` (NSynth name),
    ``pitch`` and ``velocity`` (``[N]`` rows; pitch and velocity -1 where the cache lacks them)."""
    from instrumentgen.features.cache import read_features

    meta, values = read_features(path)
    table = meta.to_pandas()
    if "instrument_family_str" in table.columns:
        families = table["instrument_family_str"].astype(str).to_numpy()
    elif "instrument_family" in table.columns:
        ids = table["instrument_family"].to_numpy(np.int64)
        if ((ids < 0) | (ids >= len(FAMILIES))).any():
            raise MetricInputError(f"{path}: instrument_family ids outside 0..{len(FAMILIES) - 1}")
        families = np.array(FAMILIES)[ids]
    else:
        raise MetricInputError(
            f"{path} has no instrument_family_str or instrument_family column: "
            "not a CLAP audio cache of a split"
        )
    z = check_embeddings(np.asarray(values, dtype=np.float64), str(path))
    cells = pd.DataFrame({"family": families})
    for column in CELL_COLUMNS:
        cells[column] = table[column].to_numpy(np.int64) if column in table.columns else -1
    return z, cells


def family_classifier():
    """The (unfitted) classifier of :data:`FAMILY_CLASSIFIER`: a scikit-learn pipeline, deterministic."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=FAMILY_C, max_iter=5000, random_state=0))


@dataclass(frozen=True)
class FamilyClassifier:
    """A fitted family classifier on unit CLAP embeddings ``[N, D]``; ``families`` are those it knows."""

    model: object
    families: tuple[str, ...]
    n_train: int
    description: str = FAMILY_CLASSIFIER

    @classmethod
    def fit(cls, z: np.ndarray, families: np.ndarray, label: str = "train split") -> FamilyClassifier:
        z = normalise_rows(check_embeddings(z, label, min_rows=2))
        families = np.asarray(families).astype(str)
        if len(families) != len(z):
            raise MetricInputError(f"{label}: {len(z)} embeddings but {len(families)} family labels")
        known = tuple(sorted(set(families)))
        if len(known) < 2:
            raise MetricInputError(
                f"{label}: a family classifier needs notes of 2 families, got {list(known)}"
            )
        return cls(family_classifier().fit(z, families), known, len(z))

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Family names ``[N]`` of embeddings ``[N, D]``."""
        return np.asarray(self.model.predict(normalise_rows(check_embeddings(z, "notes to classify"))))

    def accuracy(self, z: np.ndarray, families: np.ndarray) -> float:
        return float(np.mean(self.predict(z) == np.asarray(families).astype(str)))


@dataclass(frozen=True)
class PromptFamily:
    """A prompt's family score: the family it names (None: not scored, ``status`` says why), its notes,
    the share assigned to that family and the count of each predicted family."""

    family: str | None
    status: str
    n_notes: int
    accuracy: float | None
    predicted: dict[str, int] = field(default_factory=dict)


SCORED_CELL_COLUMNS = ["family", *CELL_COLUMNS]


@dataclass(frozen=True)
class FamilyAccuracy:
    """Hits over all notes of the scored prompts (None: no prompt names one family)."""

    value: float | None
    n_prompts: int
    n_notes: int
    per_prompt: dict[str, PromptFamily]
    scored_cells: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SCORED_CELL_COLUMNS))
    """``family`` (the one its prompt names), ``pitch``, ``velocity`` of every scored note."""


def prompt_family(text: str, known: tuple[str, ...]) -> tuple[str | None, str]:
    """The family a prompt is scored on, or None and why not."""
    families = named_families(text)
    if not families:
        return None, "no family named"
    if len(families) > 1:
        return None, f"names several families ({', '.join(families)})"
    if families[0] not in known:
        return None, f"names {families[0]}, which the classifier's training notes lack"
    return families[0], "scored"


def family_accuracy(
    classifier: FamilyClassifier, generated: Ensemble, texts: dict[str, str]
) -> FamilyAccuracy:
    """Family accuracy of every generated instrument (named by its prompt id; ``texts[id]`` its text)."""
    per_prompt, hits, notes, scored = {}, 0, 0, []
    for inst in generated.instruments():
        if inst.name not in texts:
            raise MetricInputError(f"{generated.label}: instrument {inst.name} has no prompt text")
        predicted = classifier.predict(inst.z)
        names, counts = np.unique(predicted, return_counts=True)
        counted = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
        family, status = prompt_family(texts[inst.name], classifier.families)
        if family is None:
            per_prompt[inst.name] = PromptFamily(None, status, len(inst.z), None, counted)
            continue
        n_hit = int((predicted == family).sum())
        per_prompt[inst.name] = PromptFamily(family, status, len(inst.z), n_hit / len(inst.z), counted)
        hits, notes = hits + n_hit, notes + len(inst.z)
        cells = pd.DataFrame(inst.cells, columns=CELL_COLUMNS)
        scored.append(cells.assign(family=family)[SCORED_CELL_COLUMNS])
    n_prompts = sum(p.family is not None for p in per_prompt.values())
    cells = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame(columns=SCORED_CELL_COLUMNS)
    return FamilyAccuracy(hits / notes if notes else None, n_prompts, notes, per_prompt, cells)
