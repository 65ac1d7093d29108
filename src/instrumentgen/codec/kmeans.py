"""Residual k-means: K stages of C centroids, each fitted on the residual of the stages before.

Each stage is fitted with scikit-learn's ``MiniBatchKMeans`` (seeded, so deterministic) and then
refined by one exact Lloyd step on all training frames (every centroid becomes the mean of the
frames assigned to it; a centroid with no frame keeps its mini-batch value). After that step the
squared error on the training frames can only go down from one stage to the next: within a
cluster the mean has no larger error than the zero vector, and the nearest-centroid assignment
used by the encoder is no worse than that cluster's.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import torch

log = logging.getLogger(__name__)

ASSIGN_CHUNK = 8192  # frames per distance computation (8192 x 1024 floats = 32 MiB)


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (squared L2) of each row: ``[M, D]``, ``[C, D]`` → ``[M]`` int64."""
    c_sq = (centroids * centroids).sum(dim=1)
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], ASSIGN_CHUNK):
        chunk = x[start:start + ASSIGN_CHUNK]
        out[start:start + ASSIGN_CHUNK] = torch.argmin(c_sq - 2.0 * chunk @ centroids.T, dim=1)
    return out


def quantize(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy residual quantisation of ``x [M, D]`` with ``centroids [K, C, D]``.

    Returns codes ``[M, K]`` (int64) and the reconstruction ``[M, D]`` (sum of chosen centroids).
    """
    residual = x.clone()
    codes = []
    for stage in centroids:
        idx = nearest(residual, stage)
        residual -= stage[idx]
        codes.append(idx)
    return torch.stack(codes, dim=1), x - residual


def _refine(frames: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One exact Lloyd step; returns the refined centroids ``[C, D]`` and assignments ``[M]``."""
    idx = nearest(frames, centroids)
    sums = torch.zeros_like(centroids, dtype=torch.float64).index_add_(0, idx, frames.double())
    counts = torch.bincount(idx, minlength=centroids.shape[0])
    used = counts > 0
    refined = centroids.clone()
    refined[used] = (sums[used] / counts[used, None]).float()
    return refined, nearest(frames, refined)


def fit_residual_kmeans(frames: np.ndarray, n_codebooks: int, codebook_size: int, seed: int, *,
                        batch_size: int = 2048, max_epochs: int = 20) -> np.ndarray:
    """Fit ``n_codebooks`` residual stages on ``frames [M, D]``; returns centroids ``[K, C, D]`` float32.

    ``max_epochs`` bounds each stage's passes over the frames (``MiniBatchKMeans.max_iter``);
    the mini-batch early stopping usually ends sooner.
    """
    from sklearn.cluster import MiniBatchKMeans  # imported here: encoding and decoding do not need it

    frames = np.ascontiguousarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[0] < codebook_size:
        raise ValueError(f"need at least codebook_size={codebook_size} frames [M, D] to fit, got shape "
                         f"{frames.shape}")
    if not np.isfinite(frames).all():
        raise ValueError("training frames contain NaN or inf")
    residual = torch.from_numpy(frames.copy())
    stages = []
    for k in range(n_codebooks):
        t0 = time.perf_counter()
        km = MiniBatchKMeans(n_clusters=codebook_size, batch_size=max(batch_size, codebook_size),
                             max_iter=max_epochs, n_init=1, init_size=3 * codebook_size,
                             random_state=seed + k, compute_labels=False)
        with warnings.catch_warnings():  # identical frames (silence) make k-means++ warn; harmless
            warnings.simplefilter("ignore", category=UserWarning)
            km.fit(residual.numpy())
        before = float((residual * residual).sum(dim=1).mean())
        centroids, idx = _refine(residual, torch.from_numpy(km.cluster_centers_.astype(np.float32)))
        residual -= centroids[idx]
        after = float((residual * residual).sum(dim=1).mean())
        log.info("stage %d/%d: %d centroids, %d mini-batch steps, squared error per frame %.3f -> %.3f "
                 "(%.1f s)", k + 1, n_codebooks, codebook_size, km.n_steps_, before, after,
                 time.perf_counter() - t0)
        stages.append(centroids)
    return torch.stack(stages).numpy()
