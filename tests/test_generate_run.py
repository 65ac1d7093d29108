"""Running a plan: one WAV and one manifest row per note, seeded per instrument, frame counts from the
codec's rate, decoding steps recorded."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from lm_fixtures import CARD, tiny_model

from instrumentgen.codec.base import Codec
from instrumentgen.generate import run as generate_run
from instrumentgen.generate.magnet import MagnetSettings
from instrumentgen.generate.protocols import t2i_plan
from instrumentgen.generate.run import Decoder, frames_for, generate_plan, plan_conditions, write_wav
from instrumentgen.generate.sampling import SamplingSettings
from instrumentgen.lm.conditioners import CONDITIONS


class ToneCodec(Codec):
    """A stand-in codec whose decoder maps each frame's codes to a tone (enough to check the plumbing)."""

    def __init__(self, sample_rate: int = 8000, hop_length: int = 80):
        self.sample_rate, self.hop_length, self.n_codebooks, self.codebook_size = (
            sample_rate,
            hop_length,
            4,
            CARD,
        )

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """All-zero codes of the right shape (generation never encodes)."""
        return torch.zeros(
            audio.shape[0], self.n_codebooks, self.num_frames(audio.shape[-1]), dtype=torch.long
        )

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        freq = 100.0 + 20.0 * codes.float().mean(dim=1)  # [B, F]
        freq = freq.repeat_interleave(self.hop_length, dim=1)
        phase = torch.cumsum(2 * torch.pi * freq / self.sample_rate, dim=1)
        return (0.5 * torch.sin(phase))[:, None, :]


def plan_and_clap():
    prompts = pd.DataFrame({"id": ["pad", "bass"]})
    return t2i_plan(prompts, [48, 60], [50, 100]), np.random.default_rng(0).standard_normal((2, 8)).astype(
        np.float32
    )


def test_one_wav_and_manifest_row_per_note(tmp_path, monkeypatch):
    plan, clap = plan_and_clap()
    clock = iter(range(0, 1000, 6))  # a batch's decoding takes 6 s: each of its notes 6 / batch size
    monkeypatch.setattr(generate_run, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    codec, model = ToneCodec(), tiny_model()
    manifest = generate_plan(
        model,
        codec,
        plan,
        clap,
        10,
        tmp_path,
        seed=1,
        decoder=Decoder(sampling=SamplingSettings(top_k=5)),
        batch_size=3,
    )
    assert len(manifest) == len(plan) == 8
    assert set(map(tuple, manifest[["instrument", "pitch", "velocity"]].to_numpy())) == set(
        map(tuple, plan[["instrument", "pitch", "velocity"]].to_numpy())
    )
    for path in manifest["path"]:
        audio, sr = sf.read(path)
        assert sr == 8000 and len(audio) == 10 * 80 and np.abs(audio).max() > 0.1
    assert (manifest["decoding_steps"] == 10 + 4 - 1).all() and (manifest["decoder"] == "ar").all()
    assert sorted(manifest["wall_s"]) == [2.0] * 6 + [6.0] * 2  # per instrument, batches of 3 and 1 notes
    assert manifest.groupby("instrument")["seed"].nunique().eq(1).all()


def test_an_instrument_sounds_the_same_whatever_is_generated_beside_it(tmp_path):
    plan, clap = plan_and_clap()
    model, codec = tiny_model(), ToneCodec()
    both = generate_plan(model, codec, plan, clap, 8, tmp_path / "a", seed=4, batch_size=2)
    alone = generate_plan(
        model, codec, plan[plan["instrument"] == "pad"], clap, 8, tmp_path / "b", seed=4, batch_size=2
    )
    other_seed = generate_plan(
        model, codec, plan[plan["instrument"] == "pad"], clap, 8, tmp_path / "c", seed=5
    )
    pad = both[both["instrument"] == "pad"].reset_index(drop=True)
    for a, b in zip(pad["path"], alone["path"], strict=True):
        assert np.array_equal(sf.read(a)[0], sf.read(b)[0])
    assert any(
        not np.array_equal(sf.read(a)[0], sf.read(c)[0])
        for a, c in zip(pad["path"], other_seed["path"], strict=True)
    )


def test_magnet_models_decode_with_magnet(tmp_path):
    plan, clap = plan_and_clap()
    decoder = Decoder(magnet=MagnetSettings(steps=(3, 2, 2, 1)))
    manifest = generate_plan(
        tiny_model("magnet"), ToneCodec(), plan, clap, 9, tmp_path, seed=0, decoder=decoder
    )
    assert (manifest["decoder"] == "magnet").all() and (manifest["decoding_steps"] == 8).all()


def test_frames_follow_the_codec_rate():
    assert frames_for(ToneCodec(44100, 512), 4.0) == 345  # DAC at 44.1 kHz: the paper's 345 frames
    assert frames_for(ToneCodec(24000, 480), 1.0) == 50


def test_plan_conditions_and_errors(tmp_path):
    plan, clap = plan_and_clap()
    cond = plan_conditions(plan, clap)
    assert cond.drop[:, CONDITIONS.index("family")].all() and not cond.drop[:, CONDITIONS.index("clap")].any()
    assert torch.equal(cond.clap[0], torch.from_numpy(clap[0]))
    with pytest.raises(ValueError, match="CLAP row 1, the cache has 1 rows"):
        plan_conditions(plan, clap[:1])
    with pytest.raises(ValueError, match="exceed the model's lm.max_frames 24"):
        generate_plan(tiny_model(), ToneCodec(), plan, clap, 30, tmp_path, seed=0)


def test_loud_audio_is_scaled_down_not_clipped(tmp_path):
    gain = write_wav(tmp_path / "x.wav", np.array([0.0, 2.0, -1.0]), 8000)
    assert gain == pytest.approx(0.999 / 2.0)
    assert np.abs(sf.read(tmp_path / "x.wav")[0]).max() == pytest.approx(0.999, abs=1e-3)
    assert write_wav(tmp_path / "y.wav", np.array([0.0, 0.5]), 8000) == 1.0
    with pytest.raises(ValueError, match="not finite"):
        write_wav(tmp_path / "z.wav", np.array([np.nan]), 8000)
