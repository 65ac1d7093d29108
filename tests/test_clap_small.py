"""The small (fitted) CLAP: contract, retrieval on held-out synthetic instruments, file round trip, CLIs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from instrumentgen.clap.features import FeatureConfig, FeatureExtractor
from instrumentgen.clap.loading import load_embedder
from instrumentgen.clap.pairs import CaptionError
from instrumentgen.clap.retrieval import retrieval_report
from instrumentgen.clap.small import FitConfig, SmallClap, SmallClapError, fit_small_clap
from instrumentgen.data.store import quantize
from instrumentgen.synth import synthesize_dataset

SR = 16000


@dataclass
class Split:
    audio: np.ndarray  # [N, T] float32
    instruments: list[str]
    families: list[str]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Split], dict[str, str]]:
    """33 train and 11 held-out test instruments (one per family), 0.5 s notes an octave apart."""
    root = tmp_path_factory.mktemp("clap") / "synthetic"
    synthesize_dataset(root, seed=1234, instruments_per_family={"train": 3, "test": 1}, sample_rate=SR,
                       note_seconds=0.5, pitch_step=12, velocities=(50, 100), progress=False)
    splits = {}
    for split in ("train", "test"):
        examples = json.loads((root / f"nsynth-{split}" / "examples.json").read_text())
        keys = sorted(examples)
        audio = np.stack([sf.read(root / f"nsynth-{split}" / "audio" / f"{k}.wav", dtype="float32")[0]
                          for k in keys])
        splits[split] = Split(audio, [examples[k]["instrument_str"] for k in keys],
                              [examples[k]["instrument_family_str"] for k in keys])
    return splits, json.loads((root / "captions.json").read_text())


@pytest.fixture(scope="module")
def model(synthetic: tuple[dict[str, Split], dict[str, str]]) -> SmallClap:
    splits, captions = synthetic
    train = splits["train"]
    return fit_small_clap(FeatureExtractor()(train.audio, SR), [captions[i] for i in train.instruments])


def write_store(prefix: Path, split: Split, sample_rate: int = SR) -> Path:
    """A resampled store (``<prefix>.npy`` int16 + ``<prefix>.parquet``) holding ``split``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    q, gains = zip(*(quantize(a) for a in split.audio), strict=True)
    np.save(prefix.with_suffix(".npy"), np.stack(q))
    pd.DataFrame({"note_str": [f"{i}-{n:03d}" for n, i in enumerate(split.instruments)],
                  "instrument_str": split.instruments, "instrument_family_str": split.families,
                  "row": np.arange(len(q)), "gain": gains, "sample_rate": sample_rate}).to_parquet(
        prefix.with_suffix(".parquet"))
    return prefix


def test_interface_contract(model: SmallClap, synthetic: tuple[dict[str, Split], dict[str, str]]):
    audio = synthetic[0]["test"].audio[:5]
    emb = model.embed_audio(audio, SR)
    text = model.embed_text(["a bright acoustic mallet", "a dark synthetic bass with reverb"])
    assert model.dim == 512
    for e, n in ((emb, 5), (text, 2)):
        assert e.shape == (n, 512) and e.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb, model.embed_audio(audio, SR))
    np.testing.assert_allclose(model.embed_audio(audio[:1], SR), emb[:1], atol=1e-6)  # batch-independent
    assert model.embed_text([]).shape == (0, 512)
    # Another sample rate is resampled; longer audio is cropped to the analysis window.
    assert model.embed_audio(np.zeros((2, 36000), np.float32), 24000).shape == (2, 512)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.embed_audio(np.array([[0.0, np.inf] * 600], np.float32), SR)
    with pytest.raises(TypeError):
        model.embed_text("not a list")  # type: ignore[arg-type]


def test_retrieval_beats_chance_on_held_out_instruments(model: SmallClap,
                                                        synthetic: tuple[dict[str, Split], dict[str, str]]):
    splits, captions = synthetic
    test = splits["test"]
    instruments = sorted(set(test.instruments))
    assert not set(instruments) & set(splits["train"].instruments)
    report = retrieval_report(model.embed_audio(test.audio, SR), test.instruments, test.families,
                              model.embed_text([captions[i] for i in instruments]), instruments)
    t2a = report["text_to_audio"]["instrument_level"]["instrument"]
    assert t2a["chance_recall@1"] == pytest.approx(1 / 11)
    assert t2a["recall@1"] >= 3 * t2a["chance_recall@1"]
    assert t2a["recall@5"] > t2a["chance_recall@5"] + 0.2
    assert t2a["mean_rank"] < 4.0  # chance: 6
    notes = report["text_to_audio"]["note_level"]["instrument"]
    assert notes["precision@5"] > 3 * notes["chance_precision@5"]


def test_save_load_round_trip(model: SmallClap, synthetic: tuple[dict[str, Split], dict[str, str]],
                              tmp_path: Path):
    path = model.save(tmp_path / "small.npz")
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically
    loaded = load_embedder(path)
    assert isinstance(loaded, SmallClap)
    assert loaded.vocabulary == model.vocabulary and loaded.meta == model.meta
    audio = synthetic[0]["test"].audio[:4]
    np.testing.assert_array_equal(loaded.embed_audio(audio, SR), model.embed_audio(audio, SR))
    texts = ["a dark electric bass", "an organ"]
    np.testing.assert_array_equal(loaded.embed_text(texts), model.embed_text(texts))
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects inside
        assert {"header", "audio_weight", "vocabulary"} <= set(npz.files)


def test_bad_model_files_name_the_file(model: SmallClap, tmp_path: Path):
    with pytest.raises(SmallClapError, match=r"absent\.npz: small CLAP model file not found"):
        SmallClap.load(tmp_path / "absent.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage")
    with pytest.raises(SmallClapError, match=r"junk\.npz: not a small CLAP model file"):
        SmallClap.load(junk)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(model.save(tmp_path / "full.npz").read_bytes()[:5000])
    with pytest.raises(SmallClapError, match=r"truncated\.npz"):
        SmallClap.load(truncated)
    partial = tmp_path / "partial.npz"
    np.savez(partial, audio_mean=model.audio_mean)
    with pytest.raises(SmallClapError, match=r"partial\.npz: not a small CLAP model file \(missing"):
        SmallClap.load(partial)
    bad_shape = SmallClap(model.features, model.vocabulary, model.audio_mean, model.audio_scale,
                          model.audio_weight[:, :10], model.text_weight, model.text_offset)
    bad_shape.save(tmp_path / "shape.npz")
    with pytest.raises(SmallClapError, match=r"shape\.npz: text_weight has shape"):
        SmallClap.load(tmp_path / "shape.npz")


def test_fit_rejects_degenerate_input():
    x = np.random.default_rng(0).normal(size=(6, FeatureConfig().dim))
    with pytest.raises(ValueError, match="two distinct captions"):
        fit_small_clap(x, ["a bass"] * 6)
    with pytest.raises(ValueError, match="N captions"):
        fit_small_clap(x, ["a bass", "an organ"])
    with pytest.raises(ValueError, match="text_reg"):
        fit_small_clap(x, ["a bass", "an organ"] * 3, config=FitConfig(text_reg=0.0))


def test_unknown_words_are_ignored(model: SmallClap):
    np.testing.assert_allclose(model.embed_text(["a bright mallet"]),
                               model.embed_text(["a bright zzyzx mallet"]), atol=1e-6)


def test_train_and_evaluate_clis(synthetic: tuple[dict[str, Split], dict[str, str]], tmp_path: Path,
                                 monkeypatch):
    from types import SimpleNamespace

    from instrumentgen.clap import evaluate, train_small

    splits, captions = synthetic
    train = write_store(tmp_path / "resampled" / "train", splits["train"])
    test = write_store(tmp_path / "resampled" / "test", splits["test"])
    captions_path = tmp_path / "captions.json"
    captions_path.write_text(json.dumps(captions))
    out = tmp_path / "small_clap.npz"
    assert train_small.main(["--store", str(train), "--captions", str(captions_path), "--out", str(out),
                             "--seed", "1234", "--no-progress"]) == 0
    fitted = SmallClap.load(out)
    assert fitted.meta["instruments"] == 33 and fitted.meta["notes"] == len(splits["train"].audio)
    report_path = tmp_path / "retrieval.json"
    clock = iter([10.0, 12.5])  # embedding the test split's audio takes 2.5 s
    monkeypatch.setattr(evaluate, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert evaluate.main(["--model", str(out), "--store", str(test), "--captions", str(captions_path),
                          "--out", str(report_path), "--no-progress"]) == 0
    report = json.loads(report_path.read_text())
    t2a = report["text_to_audio"]["instrument_level"]["instrument"]
    assert report["instruments"] == 11 and t2a["recall@5"] > t2a["chance_recall@5"]
    assert len(report["queries"]) == 11 and report["embed_audio_s"] == 2.5
    assert report["notes_per_s"] == round(len(splits["test"].audio) / 2.5, 1)


def test_missing_caption_names_the_instrument_and_file(synthetic: tuple[dict[str, Split], dict[str, str]],
                                                       tmp_path: Path):
    from instrumentgen.clap.train_small import train_small_clap

    splits, captions = synthetic
    store = write_store(tmp_path / "train", splits["train"])
    first = splits["train"].instruments[0]
    partial = tmp_path / "captions.json"
    partial.write_text(json.dumps({k: v for k, v in captions.items() if k != first}))
    expected = rf"captions\.json: no caption for 1 instrument\(s\), e.g. \['{first}'"
    with pytest.raises(CaptionError, match=expected):
        train_small_clap(store, partial, tmp_path / "m.npz", progress=False)
    assert not (tmp_path / "m.npz").exists()
    partial.write_text("[1, 2]")
    with pytest.raises(CaptionError, match=r"captions\.json: expected an object"):
        train_small_clap(store, partial, tmp_path / "m.npz", progress=False)
