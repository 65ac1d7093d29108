"""Seeded residual k-means in torch: the CLAP quantiser's codebooks (see ``lm.conditioners.ResidualVQ``).

Lloyd iterations on the data's device (a GPU at paper scale: ~300k notes x 1024 codes x 512 dims), with
distances computed in chunks of :data:`ASSIGN_CHUNK` rows. The start is a seeded choice of data rows, so
the result depends only on the data and the generator (on a CPU; CUDA's scatter-adds may round
differently from run to run, which is why the trainer broadcasts the codebooks under DDP).
"""

from __future__ import annotations

import torch

ASSIGN_CHUNK = 16384  # rows per distance computation (16384 x 1024 floats = 64 MiB)
KMEANS_ITERS = 20  # Lloyd iterations per stage (benchmarks/clap_quantiser.py: 10, 20, 50 measure alike)


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (Euclidean) of each row: ``[N, D]``, ``[K, D]`` → ``[N]`` int64."""
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], ASSIGN_CHUNK):
        out[start : start + ASSIGN_CHUNK] = torch.cdist(x[start : start + ASSIGN_CHUNK], centroids).argmin(1)
    return out


def kmeans(
    data: torch.Tensor, k: int, iters: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of ``data`` ``[N, D]`` into ``k`` centroids; returns ``(centroids [k, D], counts [k])``
    (``counts``: rows assigned to each centroid at the end).

    Starts from ``k`` distinct rows drawn with ``generator`` (every row, then rows drawn with replacement,
    when ``N < k``); a centroid left without rows keeps its place. ``iters = 0`` keeps the drawn rows.
    """
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"k-means data must be a non-empty [N, D] matrix, got {tuple(data.shape)}")
    if k < 1 or iters < 0:
        raise ValueError(f"k-means needs k >= 1 and iters >= 0, got k={k}, iters={iters}")
    n = data.shape[0]
    if n >= k:
        start = torch.randperm(n, generator=generator)[:k]
    else:
        start = torch.cat([torch.arange(n), torch.randint(0, n, (k - n,), generator=generator)])
    centroids = data[start.to(data.device)].clone()
    for _ in range(iters):
        idx = nearest(data, centroids)
        counts = torch.bincount(idx, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, idx, data)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None].to(data.dtype)
    counts = torch.bincount(nearest(data, centroids), minlength=k)
    return centroids, counts


def residual_kmeans(
    data: torch.Tensor, n_stages: int, k: int, iters: int, generator: torch.Generator
) -> torch.Tensor:
    """``n_stages`` k-means codebooks ``[n_stages, k, D]``, stage ``q`` fitted on the residual of ``data``
    ``[N, D]`` left by the nearest codes of the stages before it."""
    residual = data.clone()
    codebooks = []
    for _ in range(n_stages):
        centroids, _ = kmeans(residual, k, iters, generator)
        residual -= centroids[nearest(residual, centroids)]
        codebooks.append(centroids)
    return torch.stack(codebooks)
