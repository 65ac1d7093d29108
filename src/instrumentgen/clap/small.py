"""The small CLAP of the offline profiles: a fitted audio–text embedding (no network, no GPU).

Fitted in seconds from (note audio, instrument caption) pairs by regularised canonical
correlation analysis (CCA):

- audio: the descriptors of :mod:`instrumentgen.clap.features` ``[N, 288]``, standardised and
  PCA-whitened to ``pca_dims``;
- text: bag-of-words counts of the caption ``[N, V]`` over the training captions' vocabulary;
- CCA finds the ``k`` pairs of directions along which audio and captions correlate most
  (``k <= cca_dims`` and below the number of distinct captions), regularised by the PCA
  truncation on the audio side (a ridge term there would only rescale the whitened audio) and by
  a ridge term ``text_reg`` on the word-count covariance; both sides are projected on them and
  weighted by the canonical correlations, so that a caption and the notes it describes point the same way;
- a fixed random orthonormal map lifts the ``k`` dimensions to ``dim`` (512, LAION-CLAP's size,
  so the two embedders are interchangeable: cosine similarities are unchanged by the lift, and
  the embedding has rank ``k``), then rows are L2-normalised.

All of it folds into affine maps: ``audio → ((x − mean) / scale) @ W_audio`` and
``text → bow @ W_text + b_text``. A model is one ``.npz`` file (no pickle), written atomically.
Words the training captions never used are ignored by :meth:`SmallClap.embed_text`.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instrumentgen.atomic import atomic_path
from instrumentgen.checks import number_at_least, positive_int
from instrumentgen.clap.audio import l2_normalize
from instrumentgen.clap.base import AudioTextEmbedder
from instrumentgen.clap.features import FeatureConfig, FeatureExtractor
from instrumentgen.clap.text import bag_of_words, build_vocabulary, words

log = logging.getLogger(__name__)

FORMAT = "instrumentgen.small_clap"
VERSION = 1
_ARRAYS = ("vocabulary", "audio_mean", "audio_scale", "audio_weight", "text_weight", "text_offset")


class SmallClapError(ValueError):
    """A small CLAP model file that is missing, unreadable or inconsistent (the message names it)."""


@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of :func:`fit_small_clap` (defaults chosen on the tiny profile's valid split)."""

    pca_dims: int = 128
    cca_dims: int = 32
    text_reg: float = 0.01
    dim: int = 512
    seed: int = 1234

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first bad value."""
        for name in ("pca_dims", "cca_dims", "dim"):
            positive_int(name, getattr(self, name))
        if self.cca_dims > self.dim:
            raise ValueError(f"cca_dims={self.cca_dims} exceeds the embedding size dim={self.dim}")
        number_at_least("text_reg", self.text_reg, 0.0, strict=True)


class SmallClap(AudioTextEmbedder):
    """Fitted affine audio and text maps into one L2-normalised ``[*, dim]`` space."""

    def __init__(self, features: FeatureConfig, vocabulary: Sequence[str], audio_mean: np.ndarray,
                 audio_scale: np.ndarray, audio_weight: np.ndarray, text_weight: np.ndarray,
                 text_offset: np.ndarray, meta: dict[str, Any] | None = None):
        self.features = features
        self.vocabulary = [str(w) for w in vocabulary]
        self.audio_mean = np.asarray(audio_mean, np.float32)
        self.audio_scale = np.asarray(audio_scale, np.float32)
        self.audio_weight = np.asarray(audio_weight, np.float32)
        self.text_weight = np.asarray(text_weight, np.float32)
        self.text_offset = np.asarray(text_offset, np.float32)
        self.meta = dict(meta or {})
        self.dim = int(self.audio_weight.shape[1])
        self._extract = FeatureExtractor(features)

    def check(self, where: str = "small CLAP") -> None:
        """Raise :class:`SmallClapError` (prefixed with ``where``) if the arrays do not fit together."""
        f, v, d = self.features.dim, len(self.vocabulary), self.dim
        shapes = {"audio_mean": (self.audio_mean, (f,)), "audio_scale": (self.audio_scale, (f,)),
                  "audio_weight": (self.audio_weight, (f, d)), "text_weight": (self.text_weight, (v, d)),
                  "text_offset": (self.text_offset, (d,))}
        for name, (array, shape) in shapes.items():
            if array.shape != shape:
                raise SmallClapError(f"{where}: {name} has shape {array.shape}, expected {shape}")
            if not np.isfinite(array).all():
                raise SmallClapError(f"{where}: {name} contains NaN or inf")
        if (self.audio_scale <= 0).any():
            raise SmallClapError(f"{where}: audio_scale must be positive")

    # ----------------------------------------------------------------------------- embedding

    def embed_features(self, descriptors: np.ndarray) -> np.ndarray:
        """Audio descriptors ``[B, 288]`` → L2-normalised float32 ``[B, dim]``."""
        z = (np.asarray(descriptors, np.float64) - self.audio_mean) / self.audio_scale
        return l2_normalize(z @ self.audio_weight.astype(np.float64))

    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono audio ``[B, T]`` at ``sample_rate`` → L2-normalised float32 ``[B, dim]``."""
        return self.embed_features(self._extract(audio, sample_rate))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Texts → L2-normalised float32 ``[len(texts), dim]`` (unknown words are ignored)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("embed_text expects a list of strings")
        known = set(self.vocabulary)
        blind = [t for t in texts if not any(w in known for w in words(t))]
        if blind:
            log.warning("%d text(s) share no word with the small CLAP's vocabulary, e.g. %r", len(blind),
                        blind[0])
        counts = bag_of_words(texts, self.vocabulary)
        return l2_normalize(counts @ self.text_weight.astype(np.float64) + self.text_offset)

    # ----------------------------------------------------------------------------- file

    def save(self, path: str | Path) -> Path:
        """Write the model to one ``.npz`` (no pickled objects), atomically."""
        path = Path(path)
        header = {"format": FORMAT, "version": VERSION, "features": asdict(self.features), "meta": self.meta}
        arrays = {"header": np.array(json.dumps(header, sort_keys=True)),
                  "vocabulary": np.array(self.vocabulary, dtype=str),
                  "audio_mean": self.audio_mean, "audio_scale": self.audio_scale,
                  "audio_weight": self.audio_weight, "text_weight": self.text_weight,
                  "text_offset": self.text_offset}
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SmallClap:
        """Read a model written by :meth:`save`; :class:`SmallClapError` naming ``path`` if it is
        missing, not such a file, of another format version, or inconsistent."""
        path = Path(path)
        if not path.is_file():
            raise SmallClapError(f"{path}: small CLAP model file not found")
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
            raise SmallClapError(f"{path}: not a small CLAP model file ({type(e).__name__}: {e})") from e
        missing = [k for k in ("header", *_ARRAYS) if k not in data]
        if missing:
            raise SmallClapError(f"{path}: not a small CLAP model file (missing {missing})")
        try:
            header = json.loads(str(data["header"]))
            features = FeatureConfig(**header["features"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SmallClapError(f"{path}: unreadable header ({type(e).__name__}: {e})") from e
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise SmallClapError(f"{path}: format {header.get('format')!r} version "
                                 f"{header.get('version')!r}, "
                                 f"expected {FORMAT!r} version {VERSION}")
        try:
            model = cls(features, data["vocabulary"].tolist(), data["audio_mean"], data["audio_scale"],
                        data["audio_weight"], data["text_weight"], data["text_offset"], header.get("meta"))
        except (ValueError, IndexError) as e:
            raise SmallClapError(f"{path}: inconsistent model ({e})") from e
        model.check(str(path))
        return model


# --------------------------------------------------------------------------------- fitting


def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    """``cov^(-1/2)`` of a symmetric positive-definite matrix, through its eigendecomposition."""
    w, v = np.linalg.eigh(cov)
    return (v / np.sqrt(np.maximum(w, 1e-12))) @ v.T


def _lift(k: int, dim: int, seed: int) -> np.ndarray:
    """A fixed ``[k, dim]`` matrix with orthonormal rows (seeded): an isometry ``R^k → R^dim``."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, k)))
    return q.T


def fit_small_clap(descriptors: np.ndarray, captions: Sequence[str], *, features: FeatureConfig | None = None,
                   config: FitConfig | None = None, meta: dict[str, Any] | None = None) -> SmallClap:
    """Fit a :class:`SmallClap` on ``N`` notes: descriptors ``[N, 288]`` and each note's caption.

    Raises :class:`ValueError` for fewer than two distinct captions or mismatched lengths.
    """
    features = features or FeatureConfig()
    config = config or FitConfig()
    config.validate()
    x = np.asarray(descriptors, np.float64)
    n = len(x)
    if x.ndim != 2 or x.shape[1] != features.dim or n != len(captions):
        raise ValueError(f"expected descriptors [N, {features.dim}] and N captions, got {x.shape} and "
                         f"{len(captions)}")
    if not np.isfinite(x).all():
        raise ValueError("descriptors contain NaN or inf")
    distinct = sorted(set(captions))
    if len(distinct) < 2:
        raise ValueError(f"need at least two distinct captions to fit a small CLAP, got {len(distinct)}")
    vocabulary = build_vocabulary(distinct)

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    z = (x - mean) / scale
    # PCA whitening of the audio descriptors.
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    std = s / np.sqrt(n)
    keep = min(config.pca_dims, int((std > 1e-6 * std[0]).sum()), n - 1)
    whiten = vt[:keep].T / std[:keep]  # [F, p]
    a = z @ whiten  # [N, p], covariance I
    # Regularised CCA between whitened audio and caption word counts.
    t = bag_of_words(list(captions), vocabulary)
    t_mean = t.mean(axis=0)
    tc = t - t_mean
    cov_tt = tc.T @ tc / n + config.text_reg * np.eye(len(vocabulary))
    wy = _inverse_sqrt(cov_tt)
    u, corr, vht = np.linalg.svd((a.T @ tc / n) @ wy)  # the audio side is already white
    k = min(config.cca_dims, len(distinct) - 1, int((corr > 1e-6).sum()))
    if k < 1:
        raise ValueError("audio and captions share no correlated direction (constant audio or captions?)")
    audio_dirs = u[:, :k] * corr[:k]  # [p, k]
    text_dirs = wy @ vht[:k].T * corr[:k]  # [V, k]
    lift = _lift(k, config.dim, config.seed)  # [k, dim]
    info = {"fit": asdict(config), "pca_dims_used": keep, "cca_dims_used": k,
            "canonical_correlations": [round(float(c), 6) for c in corr[:k]], "notes": n,
            "captions": len(distinct), "vocabulary_size": len(vocabulary), **(meta or {})}
    model = SmallClap(features, vocabulary, mean, scale, whiten @ audio_dirs @ lift, text_dirs @ lift,
                      -(t_mean @ text_dirs) @ lift, info)
    model.check()
    return model
