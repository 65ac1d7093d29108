"""Checkpoints of the codec LM: atomic writes, resume state, and size checks on load.

A *training checkpoint* (``last.pt``) holds model, optimiser and scheduler state and the step reached;
a *model file* holds the weights and the :class:`LMConfig` (what generation loads). Both are plain dicts
of tensors and primitives, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.model import CodecLM

FORMAT = "instrumentgen-lm/1"


class CheckpointError(ValueError):
    """A missing, foreign or mismatching checkpoint; the message names the file and the difference."""


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename (a kill never leaves half a file)."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint or model file written by this package (CPU tensors)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an instrumentgen LM checkpoint (format {FORMAT} expected)")
    for key in ("config", "model"):
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"checkpoint {path} has no {key!r} entry")
    try:
        LMConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {err}") from None
    return state


def check_config(state: dict[str, Any], expected: LMConfig, path: str | Path) -> LMConfig:
    """The checkpoint's config; a :class:`CheckpointError` lists each field that differs from ``expected``."""
    found = LMConfig.from_dict(state["config"])
    diff = found.mismatch(expected)
    if diff:
        raise CheckpointError(
            f"checkpoint {path} was trained with a different model (checkpoint != requested): "
            + "; ".join(diff)
        )
    return found


def load_model(
    path: str | Path, expected: LMConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[CodecLM, dict[str, Any]]:
    """Build the model stored in ``path`` (a model file or a training checkpoint), in eval mode.

    With ``expected``, the stored config must equal it. Returns ``(model, metadata)`` where metadata
    holds the variant, step and the other non-tensor entries.
    """
    state = read_checkpoint(path)
    config = (
        check_config(state, expected, path) if expected is not None else LMConfig.from_dict(state["config"])
    )
    model = CodecLM(config)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler")}
    return model, meta
