"""LM model files and training checkpoints carry a content digest: damaged or cut-short files fail to load
with an error that names the file and how to make it again; nothing corrupt loads silently."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_fixtures import tiny_model

from instrumentgen.clap.small import SmallClap, SmallClapError
from instrumentgen.codec.fitted import CodecFileError, FittedCodec
from instrumentgen.lm.checkpoint import (
    DIGEST_KEY,
    FORMAT,
    CheckpointError,
    content_digest,
    load_model,
    read_checkpoint,
    save_atomic,
)


def _model_file(path: Path, seed: int = 0) -> dict:
    lm = tiny_model(seed=seed)
    state = {"format": FORMAT, "config": lm.config.to_dict(), "model": lm.state_dict(), "variant": "baseline"}
    save_atomic(state, path)
    return state


def _flip_inside(path: Path, tensor: torch.Tensor, n: int = 64) -> None:
    """Invert ``n`` bytes in the middle of ``tensor``'s data as stored in ``path``."""
    raw = bytearray(path.read_bytes())
    data = tensor.detach().contiguous().numpy().tobytes()
    middle = len(data) // 2
    start = bytes(raw).find(data[middle : middle + 32])
    assert start > 0, "the tensor's bytes are not stored verbatim"
    raw[start : start + n] = bytes(b ^ 0xFF for b in raw[start : start + n])
    path.write_bytes(bytes(raw))


def test_digest_is_recorded_and_round_trips(tmp_path: Path) -> None:
    state = _model_file(tmp_path / "m.pt")
    stored = torch.load(tmp_path / "m.pt", weights_only=True)
    assert stored[DIGEST_KEY] == content_digest(state) and len(stored[DIGEST_KEY]) == 64
    assert DIGEST_KEY not in load_model(tmp_path / "m.pt")[1]
    assert read_checkpoint(tmp_path / "m.pt")["variant"] == "baseline"


def test_digest_sees_every_kind_of_change() -> None:
    weights = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    base = content_digest({"model": weights, "step": 3, "betas": (0.9, 0.95), "opt": {0: {"lr": 1e-3}}})
    same = {"model": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, "step": 3}
    assert content_digest({**same, "betas": (0.9, 0.95), "opt": {0: {"lr": 1e-3}}}) == base
    changed = [
        {"model": {"w": weights["w"] + torch.tensor([[0, 0, 1e-6], [0, 0, 0]])}, "step": 3},
        {"model": {"w": weights["w"].reshape(3, 2)}, "step": 3},  # same bytes, other shape
        {"model": {"w": weights["w"].double()}, "step": 3},
        {"model": weights, "step": 4},
        {"model": weights, "step": 3.0},  # same value, other type
    ]
    digests = {content_digest({**c, "betas": (0.9, 0.95), "opt": {0: {"lr": 1e-3}}}) for c in changed}
    assert base not in digests and len(digests) == len(changed)
    assert content_digest({"a": 1, "b": 2}) == content_digest({"b": 2, "a": 1})  # key order does not count
    with pytest.raises(TypeError, match="cannot digest"):
        content_digest({"x": object()})


def test_flipped_bytes_in_the_weights_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ci" / "lm" / "baseline.pt"
    state = _model_file(path)
    weight = max(state["model"].values(), key=lambda t: t.numel())
    _flip_inside(path, weight)
    damaged = torch.load(path, weights_only=True)  # PyTorch itself reads the damaged file without a word
    name = next(k for k, v in state["model"].items() if v is weight)
    assert not torch.equal(damaged["model"][name], weight)
    with pytest.raises(CheckpointError, match="is damaged") as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and "dvc checkout" in message
    assert f"snakemake --profile workflow/profiles/ci {path}" in message  # the profile its path names


def test_cut_short_file_names_itself_and_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "last.pt"
    _model_file(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(CheckpointError, match="cannot be read") as info:
        read_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "cut short" in message and "starts again from step 0" in message


def test_file_without_a_digest_loads_with_a_warning(tmp_path: Path, caplog) -> None:
    lm = tiny_model(seed=1)
    path = tmp_path / "old.pt"
    torch.save({"format": FORMAT, "config": lm.config.to_dict(), "model": lm.state_dict()}, path)
    with caplog.at_level(logging.WARNING, logger="instrumentgen.lm.checkpoint"):
        loaded, _ = load_model(path)
    assert "has no content digest" in caplog.text and str(path) in caplog.text
    pairs = zip(loaded.state_dict().values(), lm.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_edited_entries_are_caught(tmp_path: Path) -> None:
    """A file whose metadata was changed after writing (here: the variant) no longer matches its digest."""
    path = tmp_path / "m.pt"
    _model_file(path)
    state = torch.load(path, weights_only=True)
    state["variant"] = "random"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="is damaged"):
        read_checkpoint(path)


def _flip_npz_member(path: Path, array: np.ndarray) -> None:
    raw = bytearray(path.read_bytes())
    data = np.ascontiguousarray(array).tobytes()
    start = bytes(raw).find(data[len(data) // 2 : len(data) // 2 + 32])
    assert start > 0
    raw[start : start + 64] = bytes(b ^ 0xFF for b in raw[start : start + 64])
    path.write_bytes(bytes(raw))


def test_offline_codec_and_clap_files_are_checked_by_their_zip_crc(tmp_path: Path) -> None:
    """The ``.npz`` model files of the offline codec and CLAP: a flipped byte fails zipfile's CRC-32."""
    rng = np.random.default_rng(0)
    codec = FittedCodec(rng.standard_normal((2, 16, 33)).astype(np.float32), sample_rate=16000, n_fft=64,
                        hop_length=16)
    codec.save(tmp_path / "codec.npz")
    _flip_npz_member(tmp_path / "codec.npz", codec.centroids.numpy())
    with pytest.raises(CodecFileError, match="CRC") as info:
        FittedCodec.load(tmp_path / "codec.npz")
    assert "codec.npz" in str(info.value)
    clap_path = tmp_path / "clap.npz"
    clap = _small_clap(rng)
    clap.save(clap_path)
    _flip_npz_member(clap_path, clap.audio_weight)
    with pytest.raises(SmallClapError, match="CRC") as info:
        SmallClap.load(clap_path)
    assert "clap.npz" in str(info.value)


def _small_clap(rng: np.random.Generator) -> SmallClap:
    from instrumentgen.clap.features import FeatureExtractor
    from instrumentgen.clap.small import FitConfig, fit_small_clap

    sr = 16000
    t = np.arange(sr // 2) / sr
    audio = np.stack([np.sin(2 * np.pi * f * t) * rng.uniform(0.2, 0.8) for f in np.linspace(110, 880, 24)])
    captions = [f"a {'bright' if i % 2 else 'dark'} {'bass' if i < 12 else 'flute'}" for i in range(24)]
    return fit_small_clap(FeatureExtractor()(audio.astype(np.float32), sr), captions,
                          config=FitConfig(pca_dims=8, cca_dims=2, dim=8))
