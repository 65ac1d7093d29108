"""`instrumentgen make`: an instrument from a prompt or a sample with explicit model files, and the
errors a musician gets for bad requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lm_fixtures import CARD, tiny_model
from test_codec_support import SR, render_notes

from instrumentgen.__main__ import main as instrumentgen_main
from instrumentgen.clap.features import FeatureExtractor
from instrumentgen.clap.small import FitConfig, fit_small_clap
from instrumentgen.codec.fitted import FittedCodec
from instrumentgen.lm.checkpoint import FORMAT, save_atomic
from instrumentgen.make import main, parse_range


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("make")
    torch.set_num_threads(1)
    audio, _, families = render_notes(seed=3, per_family=4)
    FittedCodec.fit(audio, SR, n_codebooks=4, codebook_size=CARD, max_frames=2000, max_epochs=5).save(
        root / "codec.npz"
    )
    clap = fit_small_clap(
        FeatureExtractor()(audio, SR),
        [f"a bright {f}" for f in families],
        config=FitConfig(pca_dims=16, cca_dims=4, dim=8),
    )
    clap.save(root / "clap.npz")
    model = tiny_model()
    save_atomic(
        {
            "format": FORMAT,
            "config": model.config.to_dict(),
            "variant": "random",
            "model": model.state_dict(),
        },
        root / "lm.pt",
    )
    sf.write(root / "ref.wav", audio[5], SR)
    sf.write(root / "silent.wav", np.zeros(SR, np.float32), SR)
    sf.write(root / "short.wav", audio[5][:100], SR)
    (root / "junk.wav").write_bytes(b"RIFF not really")
    return {
        "root": root,
        "model": [
            "--checkpoint",
            str(root / "lm.pt"),
            "--codec",
            str(root / "codec.npz"),
            "--clap",
            str(root / "clap.npz"),
            "--seconds",
            "0.3",
        ],
    }


def test_prompt_to_playable_instrument(files):
    out = files["root"] / "bass"
    main(
        [
            "--prompt",
            "a bright bass",
            "--out",
            str(out),
            "--pitches",
            "40-52:6",
            "--velocities",
            "50,100",
            "--seed",
            "3",
            *files["model"],
        ]
    )
    wavs = sorted((out / "samples").glob("*.wav"))
    assert [w.name for w in wavs] == [f"bass-{p:03d}-{v:03d}.wav" for p in (40, 46, 52) for v in (50, 100)]
    assert sf.info(wavs[0]).samplerate == SR
    assert (out / "bass.sfz").read_text().count("<region>") == 6
    assert (out / "bass.sf2").stat().st_size > 1000 and sf.info(out / "demo.wav").duration > 1


def test_same_seed_same_instrument_from_a_sample(files):
    args = [
        "--audio",
        str(files["root"] / "ref.wav"),
        "--pitches",
        "48",
        "--velocities",
        "100",
        *files["model"],
    ]
    main(["--out", str(files["root"] / "a"), "--seed", "1", *args])
    main(["--out", str(files["root"] / "b"), "--seed", "1", *args])
    main(["--out", str(files["root"] / "c"), "--seed", "2", *args])
    a, b, c = (sf.read(files["root"] / d / "samples" / f"{d}-048-100.wav")[0] for d in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "   "], "--prompt is empty"),
        (["--prompt", "zzz qqq"], "knows none of the descriptive words"),
        (["--prompt", "a zzzz qqq"], "knows none of the descriptive words"),  # "a" is known, says nothing
        (["--prompt", "a note played with the"], "knows none of the descriptive words"),
        (["--audio", "{root}/none.wav"], "none.wav does not exist"),
        (["--audio", "{root}/junk.wav"], "junk.wav cannot be read"),
        (["--audio", "{root}/silent.wav"], "silent.wav is silent"),
        (["--audio", "{root}/short.wav"], "at least 0.1 s"),
        (["--prompt", "a bass", "--pitches", "10-30"], "pitch 10 is outside"),
        (["--prompt", "a bass", "--velocities", "64"], "velocity 64 is not one of"),
        (["--prompt", "a bass", "--pitches", "low"], "expected numbers like"),
        (["--prompt", "a bass", "--seconds", "5"], "exceed what the model was built for"),
        (["--prompt", "a bass", "--cfg", "-1"], "cfg_coef must be >= 0"),
    ],
)
def test_bad_requests_are_explained(files, args, message, capsys):
    args = [a.format(root=files["root"]) for a in args]
    with pytest.raises(SystemExit) as err:
        # the request's own options come last, so that they win over the defaults before them
        main([*files["model"], "--pitches", "48", "--out", str(files["root"] / "bad"), *args])
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert not (files["root"] / "bad").exists()


def test_existing_output_is_kept_unless_overwrite(files, capsys):
    out = files["root"] / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    args = [
        "--prompt",
        "a bass",
        "--out",
        str(out),
        "--pitches",
        "48",
        "--velocities",
        "100",
        *files["model"],
    ]
    with pytest.raises(SystemExit):
        main(args)
    assert (
        "exists and is not empty" in capsys.readouterr().err and (out / "mine.txt").read_text() == "precious"
    )
    main([*args, "--overwrite"])
    assert not (out / "mine.txt").exists() and (out / "keep.sfz").is_file()


def test_missing_profile_model_and_unknown_names(files, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["--prompt", "a bass", "--out", str(tmp_path / "x"), "--profile", "nope"])
    assert "unknown profile 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--prompt", "a bass", "--out", str(tmp_path / "x"), "--checkpoint", str(tmp_path / "no.pt")])
    assert "no checkpoint file at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--prompt", "a bass", "--out", str(tmp_path / "x"), "--variant", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_top_level_command_lists_make(capsys):
    with pytest.raises(SystemExit) as err:
        instrumentgen_main([])
    assert err.value.code == 2 and "make" in capsys.readouterr().out
    assert parse_range("36-40:2,60", "pitches") == [36, 38, 40, 60]
