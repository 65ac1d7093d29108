"""Files of the codec LM: model files (what generation loads) and training checkpoints (what resumes).

A *model file* (``data/<p>/lm/<variant>.pt``) holds the weights, the :class:`LMConfig` and what the run
was (variant, step, settings); a *training checkpoint* (``last.pt``) adds optimiser and scheduler state.
Both are plain dicts of tensors and primitives, read with ``torch.load(weights_only=True)``.

Every file written by :func:`save_atomic` carries a SHA-256 *content digest* of everything else in it
(tensors byte for byte, with dtype and shape, and every other entry). :func:`read_checkpoint` recomputes
it: a file with flipped bytes, or one cut short, raises a :class:`CheckpointError` that names the file and
says how to make it again, instead of loading damaged weights. (PyTorch's zip reader checks no CRC; the
NumPy ``.npz`` files of the offline codec and CLAP are checked by ``zipfile``'s CRC-32 instead.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.model import CodecLM

log = logging.getLogger(__name__)

FORMAT = "instrumentgen-lm/1"
DIGEST_KEY = "content_sha256"
TRAINING_STATE = ("optimizer", "scheduler")  # entries of a training checkpoint, not of a model file


class CheckpointError(ValueError):
    """A missing, foreign, damaged or mismatching LM file; the message names the file and what to do."""


def _update(h: Any, value: object) -> None:
    """Feed ``value`` (nested dicts/lists of tensors, arrays and primitives) to hash ``h``, with type tags
    so that different structures never hash alike."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"A{a.dtype.str}{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8))
    elif isinstance(value, Mapping):
        h.update(f"D{len(value)}|".encode())
        for key in sorted(value, key=repr):
            h.update(f"{key!r}=".encode())
            _update(h, value[key])
    elif isinstance(value, list | tuple):
        h.update(f"L{len(value)}|".encode())
        for item in value:
            _update(h, item)
    elif value is None or isinstance(value, bool | int | float | str):
        h.update(f"P{type(value).__name__}:{value!r}|".encode())
    else:
        raise TypeError(f"cannot digest a {type(value).__name__} in an LM file")


def content_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of every entry of ``state`` but the digest itself."""
    h = hashlib.sha256()
    _update(h, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return h.hexdigest()


def regenerate_hint(path: Path) -> str:
    """How to make ``path`` again: a training checkpoint restarts its training, a model file is rebuilt by
    the rule that wrote it."""
    if path.name == "last.pt":
        return (
            f"delete {path} and rerun the training (it starts again from step 0), or restore the file "
            "from DVC (`dvc checkout`)"
        )
    parts = path.parts
    # the pipeline writes data/<profile>/lm/<variant>.pt: name the profile when the path says it
    profile = parts[-3] if len(parts) >= 4 and parts[-2] == "lm" and parts[-4] == "data" else "<profile>"
    return (
        f"delete {path} and rerun the pipeline for it (`snakemake --profile workflow/profiles/{profile} "
        f"{path}`, or `make demo` for the tiny profile), or restore it from DVC (`dvc checkout`)"
    )


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` of ``obj`` with its content digest to a temporary file next to ``path``, then
    rename (a kill never leaves half a file)."""
    sealed = {**obj, DIGEST_KEY: content_digest(obj)}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(sealed, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an LM model file or training checkpoint written by this package (CPU tensors), its content
    digest verified."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it is damaged or cut "
            f"short: {regenerate_hint(path)}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an instrumentgen LM checkpoint (format {FORMAT} expected)")
    verify_digest(state, path)
    for key in ("config", "model"):
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"checkpoint {path} has no {key!r} entry")
    try:
        LMConfig.from_dict(state["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {err}") from None
    return state


def verify_digest(state: dict[str, Any], path: Path) -> None:
    """Raise a :class:`CheckpointError` when ``state``'s content differs from its recorded digest. A file
    written before digests were recorded loads with a warning (it cannot be checked)."""
    recorded = state.get(DIGEST_KEY)
    if recorded is None:
        log.warning("%s has no content digest (written by an older instrumentgen): it cannot be checked "
                    "for damage; rerun its rule to get one", path)
        return
    try:
        found = content_digest(state)
    except TypeError as err:
        raise CheckpointError(f"checkpoint {path} holds an unexpected entry ({err})") from None
    if found != recorded:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its content does not match the digest it was written with "
            f"(sha256 {found[:12]}… != {str(recorded)[:12]}…): {regenerate_hint(path)}"
        )


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
    holds the variant, step, settings and the other non-tensor entries.
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
    meta = {k: v for k, v in state.items() if k not in ("model", DIGEST_KEY, *TRAINING_STATE)}
    return model, meta
