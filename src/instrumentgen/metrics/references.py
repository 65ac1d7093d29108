"""The ground truth an evaluation compares against: the reference sets (``A_11,*``, the T2I templates),
the test set without each instrument's S2I query cell, and the T2I family classifier with its ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instrumentgen.generate.protocols import s2i_queries
from instrumentgen.metrics.affinity import CELL_COLUMNS, Ensemble, ReferenceAffinity
from instrumentgen.metrics.clap_score import Templates
from instrumentgen.metrics.embed_notes import read_embeddings
from instrumentgen.metrics.frechet import MetricInputError
from instrumentgen.metrics.timbre import (
    SCORED_CELL_COLUMNS,
    FamilyClassifier,
    read_family_cells,
    read_family_notes,
)


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
    families it knows) and the test notes' majority-family share. ``test_notes`` holds each real test
    note's ``family``, ``pitch``, ``velocity`` and whether the classifier gets it right (``correct``), for
    the ceiling where generated notes were scored (:meth:`accuracy_at`)."""

    classifier: FamilyClassifier
    test_accuracy: float
    chance: float
    majority_share: float
    test_notes: pd.DataFrame | None = None

    @classmethod
    def fit(cls, train: Path, test: Path) -> FamilyReference:
        classifier = FamilyClassifier.fit(*read_family_notes(train), label=str(train))
        z, notes = read_family_cells(test)
        families = notes["family"].to_numpy()
        notes["correct"] = classifier.predict(z) == families
        _, counts = np.unique(families, return_counts=True)
        return cls(
            classifier, float(notes["correct"].mean()), 1 / len(classifier.families),
            float(counts.max() / counts.sum()), notes,
        )

    def accuracy_at(self, cells: pd.DataFrame) -> tuple[float | None, int]:
        """The ceiling measured where generated notes were scored: the classifier's accuracy on the real
        test notes of the (``family``, ``pitch``, ``velocity``) ``cells`` (each cell once), and how many
        notes that is; None where the test set has no note at any of them. A T2I grid spans pitches and
        velocities where a family's real notes are few, and the classifier is weaker there."""
        if self.test_notes is None or cells.empty:
            return None, 0
        types = {"family": str, **dict.fromkeys(CELL_COLUMNS, np.int64)}
        wanted = cells[SCORED_CELL_COLUMNS].astype(types).drop_duplicates()
        real = self.test_notes.merge(wanted, on=SCORED_CELL_COLUMNS, how="inner")
        return (float(real["correct"].mean()) if len(real) else None), len(real)

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
