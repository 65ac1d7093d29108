"""VGGish: the published front end against a loop-by-loop reference, the network in torchvggish's
layout, weights fetched from a loopback server and checked against the name's SHA-256 prefix."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from nsynth_fixtures import ServerConfig, serve

from instrumentgen.vggish import frontend
from instrumentgen.vggish.model import (
    PAPER_SHA256,
    VGGish,
    VGGishEmbedder,
    VGGishWeightsError,
    fetch_vggish_weights,
    load_vggish,
    published_digest,
)

OFFICIAL_KEYS = {
    f"{part}.{i}.{kind}"
    for part, idx in (("features", (0, 3, 6, 8, 11, 13)), ("embeddings", (0, 2, 4)))
    for i in idx
    for kind in ("weight", "bias")
}


def reference_log_mel(wave: np.ndarray) -> np.ndarray:
    """The published recipe written out with loops: frames, periodic Hann, |FFT|, mel bands, log."""
    n_frames = 1 + (len(wave) - 400) // 160
    hann = np.array([0.5 - 0.5 * np.cos(2 * np.pi * n / 400) for n in range(400)])
    freqs = np.linspace(0, 8000, 257)
    mel = [1127.0 * np.log(1 + f / 700.0) for f in freqs]
    lo, hi = 1127.0 * np.log(1 + 125 / 700.0), 1127.0 * np.log(1 + 7500 / 700.0)
    edges = [lo + (hi - lo) * i / 65 for i in range(66)]
    weights = np.zeros((257, 64))
    for band in range(64):
        left, center, right = edges[band : band + 3]
        for b in range(1, 257):  # DC bin stays 0
            rising, falling = (mel[b] - left) / (center - left), (right - mel[b]) / (right - center)
            weights[b, band] = max(0.0, min(rising, falling))
    out = np.zeros((n_frames, 64))
    for t in range(n_frames):
        spectrum = np.abs(np.fft.rfft(wave[t * 160 : t * 160 + 400] * hann, 512))
        out[t] = np.log(spectrum @ weights + 0.01)
    return out


def test_log_mel_matches_the_loop_reference():
    rng = np.random.default_rng(0)
    wave = rng.uniform(-0.5, 0.5, 16000)
    ours = frontend.log_mel(wave)
    assert ours.shape == (98, 64)
    np.testing.assert_allclose(ours, reference_log_mel(wave), rtol=1e-10, atol=1e-10)


def test_front_end_matches_golden_values_of_the_published_code():
    """Values computed once (2026-12-04) with the published ``mel_features`` (torchvggish 0.2 sdist, the
    AudioSet release's code): its mel matrix and the log-mel of a 440 Hz tone agreed with ours to 1e-12."""
    weights = frontend.mel_matrix()
    golden = {(5, 0): 0.947690464844, (7, 3): 0.046363923968, (8, 3): 0.993069776238,
              (54, 30): 0.076217166516, (55, 30): 0.444283032767, (223, 63): 0.104192184734,
              (224, 63): 0.219295500147, (14, 3): 0.0}
    for (row, band), value in golden.items():
        assert weights[row, band] == pytest.approx(value, abs=1e-11)
    assert weights.sum() == pytest.approx(230.9135991608477, abs=1e-9) and np.count_nonzero(weights) == 461
    t = np.arange(2 * 16000) / 16000
    frame = frontend.log_mel(0.5 * np.sin(2 * np.pi * 440 * t))[50]
    expected = [-3.736306675, 1.7921150031, -4.2053919779, -4.5427542123, -4.6043272467]
    np.testing.assert_allclose(frame[[0, 10, 20, 30, 63]], expected, atol=1e-9)


def test_a_four_second_note_gives_four_examples_at_any_rate():
    for rate in (16000, 24000, 44100):
        audio = np.sin(2 * np.pi * 440 * np.arange(4 * rate) / rate)[None].astype(np.float32) * 0.5
        x = frontend.examples(np.repeat(audio, 2, axis=0), rate)
        assert x.shape == (2, 4, 96, 64) and x.dtype == np.float32
    # the DAC frame count of a 4 s note (345 frames at 512 samples, 44.1 kHz) is 4 examples too
    assert frontend.examples_per_note(round(345 * 512 / 44100 * 16000)) == 4


def test_a_tone_peaks_in_its_mel_band():
    rate, f0 = 16000, 1000.0
    wave = 0.5 * np.sin(2 * np.pi * f0 * np.arange(rate) / rate)
    band = int(np.argmax(frontend.log_mel(wave).mean(axis=0)))
    edges = np.linspace(frontend.hertz_to_mel(125.0), frontend.hertz_to_mel(7500.0), 66)
    assert edges[band] < frontend.hertz_to_mel(f0) < edges[band + 2]


def test_notes_shorter_than_one_example_are_an_error():
    with pytest.raises(ValueError, match="at least 0.975 s"):
        frontend.examples(np.zeros((1, 12000), np.float32) + 0.1, 24000)  # 0.5 s


def test_network_has_the_torchvggish_layout_and_flattens_channels_last():
    model = VGGish().eval()
    assert set(model.state_dict()) == OFFICIAL_KEYS
    x = torch.randn(3, 1, 96, 64)
    with torch.no_grad():
        ours = model(x)
        conv = model.features(x)  # [3, 512, 6, 4]
        tf_order = torch.transpose(torch.transpose(conv, 1, 3), 1, 2).contiguous().view(3, -1)
        expected = model.embeddings(tf_order)
    assert conv.shape == (3, 512, 6, 4) and ours.shape == (3, 128)
    torch.testing.assert_close(ours, expected)
    assert (ours < 0).any(), "the embedding is taken before torchvggish's final ReLU"


@pytest.fixture(scope="module")
def published_style_weights(tmp_path_factory) -> tuple[Path, bytes]:
    """A VGGish state dict saved with torch.save, named like the release (``vggish-<sha256[:8]>.pth``)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vggish")
    raw = folder / "weights.pth"
    torch.save(VGGish().state_dict(), raw)
    data = raw.read_bytes()
    path = folder / f"vggish-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    raw.rename(path)
    return path, data


@pytest.mark.slow  # a full-size VGGish saved, served and loaded (~7 s)
def test_fetch_from_loopback_server_checks_the_prefix_and_loads(published_style_weights, tmp_path: Path):
    path, data = published_style_weights
    with serve(ServerConfig(files={f"/v0.1/{path.name}": data})) as base:
        fetched = fetch_vggish_weights(tmp_path / "models", f"{base}/v0.1/{path.name}", sha256=None,
                                       progress=False)
    assert fetched.read_bytes() == data and published_digest(fetched) == path.stem.split("-")[1]
    assert Path(f"{fetched}.sha256").read_text().startswith(hashlib.sha256(data).hexdigest())
    model = load_vggish(fetched)
    reference = VGGish()
    reference.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


@pytest.mark.slow  # ~4 s
def test_a_download_that_is_not_the_published_file_is_rejected_without_a_record(published_style_weights,
                                                                                tmp_path: Path):
    path, data = published_style_weights
    assert PAPER_SHA256.startswith("10086976") and published_digest("x/vggish-10086976.pth") == "10086976"
    dest = tmp_path / "vggish-10086976.pth"
    with serve(ServerConfig(files={"/v0.1/vggish-10086976.pth": data})) as base:
        with pytest.raises(VGGishWeightsError, match=f"does not match the published {PAPER_SHA256}"):
            fetch_vggish_weights(tmp_path, f"{base}/v0.1/vggish-10086976.pth", progress=False)
        assert dest.is_file() and not Path(f"{dest}.sha256").exists()  # nothing recorded for a wrong file
        with pytest.raises(VGGishWeightsError, match="published 10086976"):  # the name's prefix
            fetch_vggish_weights(tmp_path, f"{base}/v0.1/vggish-10086976.pth", sha256=None, progress=False)
    dest.unlink()
    with serve(ServerConfig(files={f"/v0.1/{path.name}": data})) as base:  # then the right file is fine
        fetch_vggish_weights(tmp_path, f"{base}/v0.1/{path.name}", sha256=None, progress=False)


@pytest.mark.slow  # ~4 s
def test_unusable_weight_files_are_named(published_style_weights, tmp_path: Path):
    path, data = published_style_weights
    with pytest.raises(VGGishWeightsError, match="not found"):
        load_vggish(tmp_path / "vggish-00000000.pth")
    truncated = tmp_path / "vggish.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VGGishWeightsError, match="not a readable torch weights file"):
        load_vggish(truncated)
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3)}, other)
    with pytest.raises(VGGishWeightsError, match="missing"):
        load_vggish(other)
    tampered = tmp_path / "tampered" / path.name
    tampered.parent.mkdir()
    shutil.copy(path, tampered)
    load_vggish(tampered)  # records the checksum
    with open(tampered, "r+b") as f:
        f.seek(len(data) // 2)
        f.write(b"\0" * 16)
    with pytest.raises(VGGishWeightsError, match="SHA-256 mismatch"):
        load_vggish(tampered)


def test_embedder_gives_one_frame_per_example(published_style_weights):
    path, _ = published_style_weights
    embedder = VGGishEmbedder.load(path, batch_size=3)
    rate = 24000
    audio = (0.3 * np.sin(2 * np.pi * 330 * np.arange(2 * rate) / rate))[None].repeat(2, axis=0)
    z = embedder.embed_audio(audio.astype(np.float32), rate)
    assert z.shape == (2, 2, 128) and z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z[0], z[1], rtol=1e-5, atol=1e-5)  # same note, same frames


def test_embed_notes_cli_embeds_a_resampled_split(published_style_weights, tmp_path: Path):
    """NSynth-format split → prune → resample (the pipeline's own steps) → VGGish frames per note."""
    from conftest import write_nsynth_split

    from instrumentgen.data.manifest import write_table
    from instrumentgen.data.prune import prune_split
    from instrumentgen.data.resample import resample_split
    from instrumentgen.metrics.embed_notes import main as embed_main
    from instrumentgen.metrics.embed_notes import read_embeddings

    path, _ = published_style_weights
    notes = [("guitar", "acoustic", 1, p, v) for p in (40, 60) for v in (50, 100)]
    split = write_nsynth_split(tmp_path / "raw", notes, split="test", seconds=2.0)
    table, _ = prune_split(split, note_seconds=2.0, progress=False)
    write_table(table, tmp_path / "manifest.parquet")
    prefix = tmp_path / "resampled" / "test"
    resample_split(tmp_path / "manifest.parquet", prefix.with_suffix(".npy"), prefix.with_suffix(".parquet"),
                   target_rate=24000, sample_rate=16000, note_seconds=2.0, progress=False)
    out = tmp_path / "vggish" / "test.parquet"
    embed_main(["--embedder", "vggish", "--model", str(path), "--store", str(prefix), "--out", str(out),
                "--batch-size", "3", "--device", "cpu"])
    frame_notes, z = read_embeddings(out)
    assert z.shape == (4, 2, 128) and set(frame_notes["pitch"]) == {40, 60}
    assert set(frame_notes["instrument"]) == {"guitar_acoustic_001"}
    assert not np.allclose(z[0], z[2])  # different pitches, different frames


def test_notes_too_short_for_vggish_name_the_store(published_style_weights, tmp_path: Path):
    from instrumentgen.features.cache import FeatureError
    from instrumentgen.metrics.embed_notes import embed

    path, _ = published_style_weights
    embedder = VGGishEmbedder.load(path)
    notes = pd.DataFrame({"instrument": ["a"], "pitch": [60], "velocity": [100]})
    batches = iter([(notes, np.full((1, 12000), 0.1, np.float32))])
    with pytest.raises(FeatureError, match=r"resampled/test: notes a-60-100…: VGGish needs notes"):
        embed(batches, 1, lambda audio: embedder.embed_audio(audio, 24000), "data/ci/resampled/test")
