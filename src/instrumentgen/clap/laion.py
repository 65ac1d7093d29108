"""LAION-CLAP (laion_clap 1.1.7) behind :class:`AudioTextEmbedder`: the paper profile's CLAP.

The paper's model is the music checkpoint ``music_audioset_epoch_15_esc_90.14.pt`` with
``amodel='HTSAT-base'``, ``tmodel='roberta'``, no fusion. Unlike ``laion_clap.CLAP_Module``
(which always fetches roberta-base from a model hub), the model here is built with
``laion_clap.clap_module.create_model`` and its state dict loaded by a minimal copy of
``CLAP_Module.load_ckpt``'s key mapping, so any architecture laion_clap can build (the tests'
small ``tmodel='transformer'`` models included) loads offline. Building a ``'roberta'`` text
branch still downloads roberta-base (acceptable for the paper profile); its tokenizer is
fetched only when text is embedded.

Audio path (deterministic, unlike laion's random crop): mono ``[B, T]`` → soxr to the model rate
(48 kHz) → the int16 round trip of laion's numpy API (``get_audio_embedding_from_data``) → one
window of ``clip_samples`` (10 s): shorter notes repeat-padded like laion's ``'repeatpad'``,
longer ones cropped to their first 10 s → ``CLAP.get_audio_embedding`` → L2-normalised
float32 ``[B, 512]``.

The checkpoint is verified against ``<path>.sha256`` (recorded on first use) *before*
``torch.load`` runs, because loading may unpickle.
"""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from instrumentgen.atomic import atomic_path
from instrumentgen.audio import check_mono_batch, resample_batch
from instrumentgen.clap.audio import l2_normalize, repeat_pad
from instrumentgen.clap.base import LAION_EMBEDDING_DIM, AudioTextEmbedder
from instrumentgen.download import fetch_weights, verify_checksum

log = logging.getLogger(__name__)

PAPER_CHECKPOINT_URL = ("https://huggingface.co/lukewys/laion_clap/resolve/main/"
                        "music_audioset_epoch_15_esc_90.14.pt")
PAPER_AMODEL = "HTSAT-base"
PAPER_TMODEL = "roberta"
ROBERTA_NAME = "roberta-base"
ROBERTA_MIN_VOCAB = 50000  # roberta-base has 50,265 tokens; offline transformers returns a 5-token stub
CONTEXT_LENGTH = 77
# Keys a checkpoint may hold that current models do not (transformers >= 4.31 made RoBERTa's
# position_ids a non-persistent buffer; laion_clap deletes the key for the same reason).
_OBSOLETE_KEYS = ("text_branch.embeddings.position_ids",)


class ClapCheckpointError(ValueError):
    """A LAION-CLAP checkpoint that is missing, unreadable or of another architecture."""


class ClapWeightsError(RuntimeError):
    """The pretrained LAION-CLAP weights could not be downloaded (the message says where to put them)."""


def clap_module() -> ModuleType:
    """``laion_clap.clap_module`` (imported lazily: importing laion_clap is slow, and without a
    network it hangs unless ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set)."""
    import laion_clap.clap_module as module

    return module


def register_config(name: str, config: dict[str, Any]) -> None:
    """Add a model config (``embed_dim``, ``audio_cfg``, ``text_cfg``) to laion_clap's registry."""
    missing = {"embed_dim", "audio_cfg", "text_cfg"} - set(config)
    if missing:
        raise ValueError(f"laion_clap model config {name!r} lacks {sorted(missing)}")
    clap_module().factory._MODEL_CONFIGS[name] = copy.deepcopy(config)


def model_config(name: str) -> dict[str, Any]:
    """A copy of laion_clap's registered config ``name`` (e.g. ``'HTSAT-tiny'``)."""
    configs = clap_module().factory._MODEL_CONFIGS
    if name not in configs:
        raise ValueError(f"unknown laion_clap model config {name!r}; known: {sorted(configs)}")
    return copy.deepcopy(configs[name])


def build_model(amodel: str = PAPER_AMODEL, tmodel: str = PAPER_TMODEL,
                device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A randomly initialised laion_clap ``CLAP`` (no fusion) and its config, via ``create_model``."""
    model, cfg = clap_module().create_model(amodel, tmodel, precision="fp32", device=torch.device(device),
                                            enable_fusion=False)
    return model, cfg


def save_checkpoint(model: torch.nn.Module, path: str | Path, *, epoch: int = 0) -> Path:
    """Write ``model`` in the released checkpoint format, atomically.

    That is ``{'epoch': int, 'state_dict': {'module.<key>': tensor}}``: laion's training script
    saves the DistributedDataParallel-wrapped model, hence the ``module.`` prefix.
    """
    path = Path(path)
    state = {f"module.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path, suffix=path.suffix) as tmp:
        torch.save({"epoch": epoch, "state_dict": state}, tmp)
    return path


def _numpy_safe_globals() -> list[Any]:
    """NumPy scalar types that released laion checkpoints hold next to their tensors (metrics as
    ``np.float64``); allowing them keeps ``torch.load(weights_only=True)`` usable."""
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64)]
    return [np.core.multiarray.scalar, np.dtype, *dtypes]


def _torch_load(path: Path) -> Any:
    """``torch.load`` of a verified checkpoint: tensors (and NumPy scalars) only if possible, else
    a full unpickle."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise ClapCheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    # Only reached after verify_checksum: the file is the one recorded when it was first seen.
    log.warning("%s holds more than tensors (%s); loading it with full unpickling (its checksum matched)",
                path, reason)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, OSError, RuntimeError, EOFError, ValueError, AttributeError,
            ImportError) as e:
        raise ClapCheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e


def checkpoint_state_dict(checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    """The model state dict of a loaded checkpoint, mapped like ``CLAP_Module.load_ckpt``.

    Takes ``checkpoint['state_dict']`` when present (else the object itself) and strips the
    ``module.`` prefix of DistributedDataParallel checkpoints.
    """
    state = checkpoint
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) for k in state):
        raise ClapCheckpointError(f"{path}: no model state dict found (expected a dict with 'state_dict')")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_state_dict_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
                         arch: str) -> None:
    """Load ``state`` strictly into ``model``; :class:`ClapCheckpointError` naming ``path`` if it
    does not fit (missing or unexpected keys, shape mismatches)."""
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not (k in _OBSOLETE_KEYS and k not in expected)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing keys {missing[:4]}" if missing else "",
                 f"{len(unexpected)} unexpected keys {unexpected[:4]}" if unexpected else "",
                 f"{len(shapes)} shape mismatches {shapes[:3]}" if shapes else ""]
        raise ClapCheckpointError(f"{path}: not a checkpoint of the {arch} architecture: "
                                  + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=True)


def fetch_clap_weights(cache_dir: str | Path, url: str = PAPER_CHECKPOINT_URL, *, progress: bool = True,
                       retries: int = 5, timeout: float = 60) -> Path:
    """The LAION-CLAP checkpoint at ``cache_dir/<file name of url>``, downloaded (resumably) unless
    present and checked against its SHA-256 record; :class:`ClapWeightsError` names the URL and,
    without network, where a pre-downloaded copy can be placed (see :func:`fetch_weights`)."""
    return fetch_weights(url, cache_dir, what="LAION-CLAP checkpoint", error=ClapWeightsError,
                         progress=progress, retries=retries, timeout=timeout)


class LaionClap(AudioTextEmbedder):
    """A laion_clap ``CLAP`` model as an :class:`AudioTextEmbedder` (``dim`` = 512)."""

    def __init__(self, model: torch.nn.Module, config: dict[str, Any], tmodel: str, *,
                 batch_size: int = 16):
        self.model = model.eval()
        self.config = config
        self.tmodel = tmodel
        self.batch_size = batch_size
        self.sample_rate = int(config["audio_cfg"]["sample_rate"])
        self.clip_samples = int(config["audio_cfg"]["clip_samples"])
        self.dim = int(getattr(model, "joint_embed_shape", LAION_EMBEDDING_DIM))
        self.device = next(model.parameters()).device
        self._roberta = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, amodel: str = PAPER_AMODEL, tmodel: str = PAPER_TMODEL,
                        device: str | torch.device | None = None, batch_size: int = 16) -> LaionClap:
        """Verify ``path`` against its checksum record, then build ``amodel``/``tmodel`` and load it."""
        path = Path(path)
        if not path.is_file():
            raise ClapCheckpointError(
                f"{path}: LAION-CLAP checkpoint not found; fetch_clap_weights() downloads it, or put a "
                f"pre-downloaded copy there")
        verify_checksum(path)  # before torch.load: loading may unpickle
        state = checkpoint_state_dict(_torch_load(path), path)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, cfg = build_model(amodel, tmodel, device)
        load_state_dict_into(model, state, path, f"{amodel}/{tmodel}")
        log.info("loaded LAION-CLAP %s/%s from %s", amodel, tmodel, path)
        return cls(model, cfg, tmodel, batch_size=batch_size)

    @classmethod
    def paper(cls, cache_dir: str | Path, url: str = PAPER_CHECKPOINT_URL, **kwargs: Any) -> LaionClap:
        """The paper's model: the music checkpoint (fetched into ``cache_dir`` if absent), HTSAT-base."""
        return cls.from_checkpoint(fetch_clap_weights(cache_dir, url), amodel=PAPER_AMODEL,
                                   tmodel=PAPER_TMODEL, **kwargs)

    # ----------------------------------------------------------------------------- audio

    def prepare_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono ``[B, T]`` at ``sample_rate`` → the model's input windows float32 ``[B, clip_samples]``."""
        audio = resample_batch(check_mono_batch(audio, sample_rate), sample_rate, self.sample_rate)
        # laion's numpy API quantises to int16 and back (clipping to [-1, 1]).
        audio = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
        return repeat_pad(audio, self.clip_samples)

    @torch.no_grad()
    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono audio ``[B, T]`` at ``sample_rate`` → L2-normalised float32 ``[B, 512]``."""
        windows = self.prepare_audio(audio, sample_rate)
        out = []
        for start in range(0, len(windows), self.batch_size):
            chunk = torch.from_numpy(windows[start:start + self.batch_size])
            inputs = [{"waveform": w, "longer": torch.tensor([False])} for w in chunk]
            out.append(self.model.get_audio_embedding(inputs).float().cpu().numpy())
        return l2_normalize(np.concatenate(out))

    # ----------------------------------------------------------------------------- text

    def tokenize(self, texts: list[str]) -> torch.Tensor | dict[str, torch.Tensor]:
        """Texts → the text branch's input: BPE ids ``[B, 77]`` ('transformer', vocabulary bundled
        with laion_clap) or RoBERTa ``input_ids``/``attention_mask`` ``[B, 77]`` ('roberta')."""
        if self.tmodel == "transformer":
            return clap_module().tokenize(texts, context_length=CONTEXT_LENGTH)
        if self.tmodel == "roberta":
            return self._roberta_tokenizer()(texts, padding="max_length", truncation=True,
                                             max_length=CONTEXT_LENGTH, return_tensors="pt")
        raise ValueError(f"text model {self.tmodel!r} is not supported (use 'roberta' or 'transformer')")

    def _roberta_tokenizer(self) -> Any:
        """roberta-base's tokenizer (fetched from the model hub on first use, then cached)."""
        if self._roberta is None:
            from transformers import RobertaTokenizer

            hint = (f"the {ROBERTA_NAME} tokenizer could not be fetched (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE "
                    f"set, or no network, and no cached copy); embedding text with the paper's LAION-CLAP "
                    f"needs it once, online")
            try:
                tok = RobertaTokenizer.from_pretrained(ROBERTA_NAME)
            except OSError as e:
                raise RuntimeError(f"{hint}: {e}") from e
            if len(tok) < ROBERTA_MIN_VOCAB:  # offline, transformers returns a 5-token stub silently
                raise RuntimeError(f"{hint}: it came back with {len(tok)} tokens instead of ~50,265")
            self._roberta = tok
        return self._roberta

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Texts → L2-normalised float32 ``[len(texts), 512]``."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("embed_text expects a list of strings")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenize(list(texts[start:start + self.batch_size]))
            if isinstance(tokens, torch.Tensor):
                tokens = tokens.to(self.device)
            else:
                tokens = {k: v.to(self.device) for k, v in tokens.items()}
            emb = F.normalize(self.model.encode_text(tokens, device=self.device), dim=-1)
            out.append(emb.float().cpu().numpy())
        return l2_normalize(np.concatenate(out))
