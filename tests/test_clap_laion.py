"""The LAION-CLAP path offline: a small laion_clap ``CLAP`` (HTSAT-tiny audio, the bundled-BPE
'transformer' text branch) saved in the released checkpoint format, then checksum, load, embed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from instrumentgen.clap import laion
from instrumentgen.clap.laion import ClapCheckpointError, ClapWeightsError, LaionClap
from instrumentgen.download import DownloadError, checksum_path

# slow: the module's small laion_clap model takes ~6 s to build, its tests ~15 s together
pytestmark = pytest.mark.slow

ARCH = "test-HTSAT-tiny-16k"
SR = 16000
WINDOW = 10 * SR


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small HTSAT-tiny CLAP at 16 kHz (10 s window) with a 1-layer text transformer, saved like
    the released file: ``{'epoch', 'state_dict': {'module.<key>': tensor}}``."""
    cfg = laion.model_config("HTSAT-tiny")
    cfg["audio_cfg"].update(sample_rate=SR, clip_samples=WINDOW, window_size=1024, hop_size=160, fmax=8000)
    cfg["text_cfg"].update(width=64, heads=2, layers=1)
    laion.register_config(ARCH, cfg)
    torch.manual_seed(0)
    model, _ = laion.build_model(ARCH, "transformer")
    return laion.save_checkpoint(model, tmp_path_factory.mktemp("laion") / "small_clap.pt")


@pytest.fixture(scope="module")
def clap(small_checkpoint: Path) -> LaionClap:
    return LaionClap.from_checkpoint(small_checkpoint, amodel=ARCH, tmodel="transformer", device="cpu")


def _notes(n: int, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(100, 1000, size=(n, 1))
    return (0.3 * np.sin(2 * np.pi * f0 * t) * np.exp(-3 * t)).astype(np.float32)


def test_checkpoint_is_in_the_released_format(small_checkpoint: Path):
    ckpt = torch.load(small_checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"epoch", "state_dict"}
    assert all(k.startswith("module.") for k in ckpt["state_dict"])


def test_paper_constants():
    cfg = laion.model_config(laion.PAPER_AMODEL)
    assert (cfg["audio_cfg"]["sample_rate"], cfg["audio_cfg"]["clip_samples"]) == (48000, 480000)
    assert laion.PAPER_CHECKPOINT_URL.endswith("/music_audioset_epoch_15_esc_90.14.pt")


def test_load_records_checksum_and_embeds(clap: LaionClap, small_checkpoint: Path):
    assert checksum_path(small_checkpoint).is_file()  # recorded on first use
    audio = clap.embed_audio(_notes(3, 1.0), SR)
    text = clap.embed_text(["a bright mallet", "a dark bass", "an organ with reverb"])
    for emb in (audio, text):
        assert emb.shape == (3, 512) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(clap.embed_text(["a dark bass"])[0], text[1], atol=1e-6)
    assert clap.embed_text([]).shape == (0, 512)


def test_loaded_weights_match_the_saved_ones(clap: LaionClap, small_checkpoint: Path):
    saved = torch.load(small_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in clap.model.state_dict().items():
        torch.testing.assert_close(value, saved[f"module.{key}"])


def test_short_clip_equals_its_repeat_padded_window(clap: LaionClap):
    clip = _notes(1, 3.0, seed=1)
    padded = np.zeros((1, WINDOW), np.float32)
    padded[0, :3 * clip.shape[1]] = np.tile(clip[0], 3)  # laion's 'repeatpad': 3 copies, then zeros
    np.testing.assert_allclose(clap.embed_audio(clip, SR), clap.embed_audio(padded, SR), atol=1e-6)


def test_long_audio_is_cropped_deterministically_at_the_start(clap: LaionClap):
    long = _notes(2, 12.0, seed=2)
    first = clap.embed_audio(long, SR)
    np.testing.assert_array_equal(first, clap.embed_audio(long, SR))
    np.testing.assert_allclose(first, clap.embed_audio(long[:, :WINDOW], SR), atol=1e-6)


def test_other_rates_are_resampled(clap: LaionClap):
    emb = clap.embed_audio(np.zeros((2, 24000), np.float32) + 0.01, 24000)
    assert emb.shape == (2, 512)
    with pytest.raises(ValueError, match="NaN"):
        clap.embed_audio(np.full((1, 100), np.nan, np.float32), SR)


def test_tampered_checkpoint_is_rejected_before_torch_load(small_checkpoint: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    copy = tmp_path / "clap.pt"
    copy.write_bytes(small_checkpoint.read_bytes())
    checksum_path(copy).write_text(checksum_path(small_checkpoint).read_text())
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00tampered\x00")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load called on an unverified checkpoint")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(DownloadError, match=r"clap\.pt: SHA-256 mismatch"):
        LaionClap.from_checkpoint(copy, amodel=ARCH, tmodel="transformer")


def test_numpy_scalars_in_checkpoint_load_without_full_unpickling(small_checkpoint: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    ckpt = torch.load(small_checkpoint, map_location="cpu", weights_only=True)
    ckpt["val_metric"] = np.float64(90.14)  # like the released files' metrics
    path = tmp_path / "with_numpy.pt"
    torch.save(ckpt, path)
    real_load = torch.load

    def weights_only_load(*args: object, **kwargs: object) -> object:
        assert kwargs.get("weights_only") is True, "fell back to full unpickling"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", weights_only_load)
    state = laion.checkpoint_state_dict(laion._torch_load(path), path)
    assert set(state) == {k.removeprefix("module.") for k in ckpt["state_dict"]}


def test_wrong_architecture_names_the_file(small_checkpoint: Path, tmp_path: Path):
    state = torch.load(small_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    state.pop("module.logit_scale_a")
    state["module.token_embedding.weight"] = state["module.token_embedding.weight"][:, :32]
    bad = tmp_path / "other.pt"
    torch.save({"state_dict": state}, bad)
    with pytest.raises(ClapCheckpointError, match=r"other\.pt: not a checkpoint of the .*missing keys"):
        LaionClap.from_checkpoint(bad, amodel=ARCH, tmodel="transformer")


def test_unreadable_and_missing_checkpoints(tmp_path: Path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ClapCheckpointError, match=r"junk\.pt: not a readable torch checkpoint"):
        LaionClap.from_checkpoint(junk, amodel=ARCH, tmodel="transformer")
    with pytest.raises(ClapCheckpointError, match=r"absent\.pt: LAION-CLAP checkpoint not found"):
        LaionClap.from_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("failure", ["raises", "stub"])
def test_roberta_tokenizer_offline_is_a_clear_error(clap: LaionClap, monkeypatch: pytest.MonkeyPatch,
                                                    failure: str):
    """Offline, transformers either raises or (with the offline variables) returns a 5-token stub;
    both must become a clear error. Simulated, so that a cached roberta-base does not matter."""
    import transformers

    class Stub:
        def __len__(self) -> int:
            return 5

    def from_pretrained(name, *args, **kwargs):
        if failure == "raises":
            raise OSError(f"We couldn't connect to fetch {name}")
        return Stub()

    monkeypatch.setattr(transformers.RobertaTokenizer, "from_pretrained", from_pretrained)
    roberta = LaionClap(clap.model, clap.config, "roberta")
    with pytest.raises(RuntimeError, match="roberta-base tokenizer could not be fetched"):
        roberta.tokenize(["a bright mallet"])


def test_fetch_skips_present_file_and_explains_network_failure(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    present = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    present.write_bytes(b"weights")
    assert laion.fetch_clap_weights(tmp_path) == present

    import instrumentgen.download as downloads

    def unreachable(url: str, dest: Path, **kwargs: object) -> Path:
        raise downloads.DownloadNetworkError(f"could not download {url}: URLError: no network")

    monkeypatch.setattr(downloads, "download", unreachable)
    url = "http://127.0.0.1:9/clap.pt"
    with pytest.raises(ClapWeightsError, match=rf"{url}.*put it at {tmp_path / 'clap.pt'}"):
        laion.fetch_clap_weights(tmp_path, url=url)
