"""MusicGen's delay pattern as a small build/revert object.

With ``K`` codebooks and ``T`` frames, codebook ``k`` (``k = 0..K-1``) is shifted right by ``k`` steps, so
the interleaved sequence has ``S = T + K - 1`` steps and at step ``s`` the model predicts frame ``s`` of
codebook 0, frame ``s - 1`` of codebook 1, ..., i.e. codebook ``k`` is conditioned on all coarser codebooks of
the same frame. No BOS step is included: position 0 of the pattern holds frame 0 of codebook 0; the LM is
expected to prepend its own start token (shifting inputs right by one) when it builds the model input.

Step ``s`` of codebook ``k`` is *valid* (holds a real code) iff ``k <= s < k + T``. Invalid steps hold
``special_token`` and are excluded from the loss: the first ``k`` steps of codebook ``k`` (before its shift)
and the last ``K - 1 - k`` steps (after its end), as in audiocraft's ``DelayedPatternProvider``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from instrumentgen.checks import positive_int

__all__ = ["DelayPattern"]


@dataclass(frozen=True)
class DelayPattern:
    """Delay interleaving pattern for ``n_codebooks`` parallel codebook streams.

    ``special_token`` is the id used for "no token here"; it equals the codebook size (e.g. 1024), so real
    codes lie in ``[0, special_token)``.
    """

    n_codebooks: int
    special_token: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_codebooks", positive_int("n_codebooks", self.n_codebooks))
        object.__setattr__(
            self, "special_token", positive_int("special_token (the codebook size)", self.special_token)
        )

    # ------------------------------------------------------------------ helpers
    def _check_3d(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3:
            raise ValueError(
                f"{name} must have shape [B, K, T] (3 dims), got ndim={x.ndim} shape={tuple(x.shape)}"
            )
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ValueError(f"{name} must have an integer dtype, got {x.dtype}")
        if x.shape[1] != self.n_codebooks:
            raise ValueError(
                f"{name} has K={x.shape[1]} codebooks on dim 1, expected n_codebooks={self.n_codebooks}"
            )

    def _offsets(self, length: int, device: torch.device | None) -> torch.Tensor:
        """``[K, length]`` matrix ``s - k``: the frame index that step ``s`` of codebook ``k`` refers to."""
        steps = torch.arange(length, device=device)
        ks = torch.arange(self.n_codebooks, device=device)
        return steps[None, :] - ks[:, None]

    # ---------------------------------------------------------------------- API
    def sequence_length(self, n_frames: int) -> int:
        """Length ``S = T + K - 1`` of the delayed sequence for ``T = n_frames`` frames."""
        return n_frames + self.n_codebooks - 1

    def valid_mask(self, n_frames: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Loss mask of the delayed sequence.

        Returns a BoolTensor ``[K, T + K - 1]`` with ``valid[k, s] = (k <= s < k + T)``. False marks the
        ``special_token`` steps: the first ``k`` and the last ``K - 1 - k`` steps of codebook ``k``.
        """
        n_frames = positive_int("n_frames", n_frames)
        off = self._offsets(self.sequence_length(n_frames), torch.device(device) if device else None)
        return (off >= 0) & (off < n_frames)

    def build(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interleave codes with the delay pattern.

        Args:
            codes: integer tensor ``[B, K, T]`` with values in ``[0, special_token)``, ``T >= 1``.

        Returns:
            ``(seq, valid)``: ``seq`` LongTensor ``[B, K, T + K - 1]`` with
            ``seq[b, k, s] = codes[b, k, s - k]`` where valid and ``special_token`` elsewhere;
            ``valid`` BoolTensor ``[K, T + K - 1]``
            (see :meth:`valid_mask`).
        """
        self._check_3d(codes, "codes")
        n_frames = codes.shape[-1]
        if n_frames < 1:
            raise ValueError(f"codes must have T >= 1 frames, got T={n_frames}")
        if codes.numel() > 0:
            lo, hi = int(codes.min()), int(codes.max())
            if lo < 0 or hi >= self.special_token:
                raise ValueError(
                    f"codes must lie in [0, {self.special_token}) (special_token is reserved), "
                    f"got min={lo} max={hi}"
                )
        codes = codes.long()
        off = self._offsets(self.sequence_length(n_frames), codes.device)  # [K, S]
        valid = (off >= 0) & (off < n_frames)
        index = off.clamp(0, n_frames - 1).expand(codes.shape[0], -1, -1)  # [B, K, S]
        gathered = torch.gather(codes, 2, index)
        special = torch.full_like(gathered, self.special_token)
        seq = torch.where(valid[None], gathered, special)
        return seq, valid

    def revert(self, seq: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`build`: ``codes[b, k, t] = seq[b, k, t + k]``.

        Args:
            seq: integer tensor ``[B, K, S]`` with ``S >= K`` (the content of invalid steps is ignored, so
                model outputs whose special steps hold arbitrary ids can be reverted).

        Returns:
            LongTensor ``[B, K, S - K + 1]``. ``revert(build(codes)[0])`` equals ``codes`` exactly.
        """
        self._check_3d(seq, "seq")
        length = seq.shape[-1]
        n_frames = length - self.n_codebooks + 1
        if n_frames < 1:
            raise ValueError(
                f"seq must have S >= K = {self.n_codebooks} steps to hold at least one frame, got S={length}"
            )
        frames = torch.arange(n_frames, device=seq.device)
        ks = torch.arange(self.n_codebooks, device=seq.device)
        index = (frames[None, :] + ks[:, None]).expand(seq.shape[0], -1, -1)  # [B, K, T]
        return torch.gather(seq.long(), 2, index)
