"""The procedural NSynth-format dataset: layout, determinism, pitch, velocity, family distinctness."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from instrumentgen.nsynth import metadata
from instrumentgen.synth import dataset as synth_dataset
from instrumentgen.synth import synthesize_dataset
from instrumentgen.synth.captions import ADJECTIVES, FAMILY_WORDS, PHRASES, SOURCE_WORDS
from instrumentgen.synth.dsp import max_pitch_for_rate, midi_to_hz
from instrumentgen.synth.instrument import FAMILY_SPECS, sample_instrument
from instrumentgen.synth.render import render_note

SR = 16000
NOTE_SECONDS = 0.5
COUNTS = {"train": 6, "valid": 1, "test": 1}


def _small(root: Path, **overrides: Any) -> dict[str, int]:
    kwargs: dict[str, Any] = dict(seed=5, instruments_per_family={"test": 1}, sample_rate=SR,
                                  note_seconds=0.25, pitch_step=12, velocities=(50, 127), progress=False)
    kwargs.update(overrides)
    return synthesize_dataset(root, **kwargs)


def _load(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return {p.name.removeprefix("nsynth-"): metadata.load_examples(p) for p in sorted(root.glob("nsynth-*"))}


def _read(root: Path, split: str, key: str) -> np.ndarray:
    audio, sr = sf.read(root / f"nsynth-{split}" / "audio" / f"{key}.wav", dtype="float32")
    assert sr == SR
    return audio


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("synth") / "nsynth"
    start = time.perf_counter()
    counts = synthesize_dataset(root, seed=3, instruments_per_family=COUNTS, sample_rate=SR,
                                note_seconds=NOTE_SECONDS, pitch_step=12, velocities=(50, 127),
                                progress=False)
    print(f"\nsynthesized {sum(counts.values())} notes in {time.perf_counter() - start:.1f} s")
    return root, counts


# ----------------------------------------------------------------------------- layout and schema


def test_layout_and_schema(dataset: tuple[Path, dict[str, int]]) -> None:
    root, counts = dataset
    assert sorted(os.listdir(root.parent)) == [root.name]  # no temporary directory left behind
    expected = ["captions.json", "nsynth-test", "nsynth-train", "nsynth-valid"]
    assert sorted(p.name for p in root.iterdir()) == expected
    splits = _load(root)  # validates every entry with metadata.validate_example
    assert {s: len(ex) for s, ex in splits.items()} == counts
    frames = round(NOTE_SECONDS * SR)
    note_ids, inst_ids_by_split, names_by_split = [], {}, {}
    sources = set()
    for split, examples in splits.items():
        audio_dir = root / f"nsynth-{split}" / "audio"
        assert sorted(examples.keys()) == sorted(p.stem for p in audio_dir.iterdir())
        for key, ex in examples.items():
            assert tuple(ex) == metadata.FIELDS
            info = sf.info(str(audio_dir / f"{key}.wav"))
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", frames)
            assert ex["sample_rate"] == SR
            family, source = ex["instrument_family_str"], ex["instrument_source_str"]
            assert ex["instrument_str"].startswith(f"{family}_{source}_")
            assert ex["instrument_source_str"] in FAMILY_SPECS[ex["instrument_family_str"]].sources
            sources.add(ex["instrument_source_str"])
        note_ids += [ex["note"] for ex in examples.values()]
        inst_ids_by_split[split] = {ex["instrument"] for ex in examples.values()}
        names_by_split[split] = {ex["instrument_str"] for ex in examples.values()}
        families = {ex["instrument_family_str"] for ex in examples.values()}
        assert families == set(metadata.FAMILIES), f"{split}: missing {set(metadata.FAMILIES) - families}"
        per_family = defaultdict(set)
        for ex in examples.values():
            per_family[ex["instrument_family_str"]].add(ex["instrument_str"])
        assert all(len(v) == COUNTS[split] for v in per_family.values()), split
    assert len(note_ids) == len(set(note_ids)), "note ids are not unique"
    assert sources == set(metadata.SOURCES)
    for a in splits:
        for b in splits:
            if a < b:
                assert not inst_ids_by_split[a] & inst_ids_by_split[b], (a, b)
                assert not names_by_split[a] & names_by_split[b], (a, b)
    # NNN unique per family across splits, qualities fixed per instrument
    all_names = set().union(*names_by_split.values())
    family_nnn, qualities = {}, defaultdict(set)
    for examples in splits.values():
        for ex in examples.values():
            family_nnn[ex["instrument_str"]] = (ex["instrument_family_str"], ex["instrument_str"][-3:])
            qualities[ex["instrument_str"]].add(tuple(ex["qualities"]))
    assert len(set(family_nnn.values())) == len(all_names), "NNN reused within a family"
    assert all(len(q) == 1 for q in qualities.values())
    # captions: one per instrument, naming its family, source and every set quality
    captions = json.loads((root / "captions.json").read_text())
    assert set(captions) == all_names
    for examples in splits.values():
        for ex in examples.values():
            text = captions[ex["instrument_str"]]
            assert any(w in text for w in FAMILY_WORDS[ex["instrument_family_str"]]), text
            assert any(w in text for w in SOURCE_WORDS[ex["instrument_source_str"]]), text
            for q in ex["qualities_str"]:
                assert any(w in text for w in {**ADJECTIVES, **PHRASES}[q]), (q, text)
    assert len(set(captions.values())) > len(captions) // 2  # varied wording


def test_note_grid_and_dropout(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _small(root, instruments_per_family={"valid": 1}, pitch_step=5, velocities=(25, 75, 127),
           cell_dropout=0.9)
    cells = defaultdict(lambda: defaultdict(set))
    for ex in _load(root)["valid"].values():
        cells[ex["instrument_str"]][ex["pitch"]].add(ex["velocity"])
    for inst, by_pitch in cells.items():
        pitches = sorted(by_pitch)
        assert all(b - a == 5 for a, b in zip(pitches, pitches[1:], strict=False)), inst
        assert all(1 <= len(v) and v <= {25, 75, 127} for v in by_pitch.values()), inst
    n_cells = sum(len(v) for by_pitch in cells.values() for v in by_pitch.values())
    n_pitches = sum(len(by_pitch) for by_pitch in cells.values())
    assert n_cells < 1.5 * n_pitches  # most cells were dropped, but every pitch kept one


# ----------------------------------------------------------------------------- determinism


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_determinism_and_workers(tmp_path: Path) -> None:
    _small(tmp_path / "a")
    _small(tmp_path / "b", workers=2)
    _small(tmp_path / "c")
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b, "workers=2 changed the output"
    assert a == c, "two runs with the same seed differ"
    _small(tmp_path / "d", seed=6)
    d = _files(tmp_path / "d")
    shared = [k for k in a if k.endswith(".wav") and k in d]
    assert shared, "different seeds share no note names to compare"
    assert all(a[k] != d[k] for k in shared), "a different seed reproduced some audio"


def test_failed_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synth_dataset.render_note

    def flaky(*args: Any, **kwargs: Any) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth_dataset, "render_note", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        _small(tmp_path / "out")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- pitch and range


def test_pitch_accuracy(dataset: tuple[Path, dict[str, int]]) -> None:
    import librosa

    root, _ = dataset
    by_family: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for split, examples in _load(root).items():
        for key, ex in sorted(examples.items()):
            if 40 <= ex["pitch"] <= 84:
                by_family[ex["instrument_family_str"]].append((split, key, ex["pitch"]))
    report, failed = {}, []
    for family in metadata.FAMILIES:
        notes = by_family[family][:: max(1, len(by_family[family]) // 8)][:8]
        assert len(notes) >= 4, family
        ok = []
        for split, key, pitch in notes:
            f = midi_to_hz(pitch)
            f0, voiced, _ = librosa.pyin(_read(root, split, key), fmin=f / 2, fmax=f * 2, sr=SR,
                                         frame_length=2048, hop_length=256)
            est = float(np.nanmedian(f0[voiced])) if voiced.any() else float("nan")
            ok.append(bool(np.isfinite(est) and abs(1200 * np.log2(est / f)) <= 50))
        report[family] = f"{sum(ok)}/{len(ok)}"
        if np.mean(ok) < 0.9:
            failed.append(family)
    assert not failed, f"pyin median f0 off by > 50 cents too often: {report}"


def test_pitch_range_full(tmp_path: Path) -> None:
    root = tmp_path / "full"
    _small(root, instruments_per_family={"train": 1}, pitch_step=1, velocities=(127,), note_seconds=0.05)
    pitches_by_family = defaultdict(set)
    for ex in _load(root)["train"].values():
        pitches_by_family[ex["instrument_family_str"]].add(ex["pitch"])
    pitches = set().union(*pitches_by_family.values())
    assert min(pitches) < metadata.PIANO_MIN and max(pitches) > metadata.PIANO_MAX
    assert max(pitches) <= max_pitch_for_rate(16000)
    for family, ps in pitches_by_family.items():
        lo, hi = FAMILY_SPECS[family].pitch_range
        assert lo <= min(ps) and max(ps) <= hi and len(ps) == max(ps) - min(ps) + 1, family
    # at 8 kHz no fundamental may exceed 0.45 * sample_rate
    low = tmp_path / "low"
    _small(low, instruments_per_family={"train": 1}, pitch_step=1, velocities=(127,), note_seconds=0.05,
           sample_rate=8000)
    top = max(ex["pitch"] for ex in _load(low)["train"].values())
    assert top == max_pitch_for_rate(8000) and midi_to_hz(top) <= 0.45 * 8000 < midi_to_hz(top + 1)


# ----------------------------------------------------------------------------- velocity


def _centroid(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return float((power * np.fft.rfftfreq(len(x), 1 / SR)).sum() / power.sum())


def test_velocity_loudness_and_brightness() -> None:
    failures = []
    inst_id = 10_000
    for family in metadata.FAMILIES:
        for source in FAMILY_SPECS[family].sources:
            for _ in range(2):
                inst = sample_instrument(7, inst_id, family, source, inst_id % 1000)
                inst_id += 1
                pitch = int(np.clip(60, *inst.pitch_range))
                notes = {v: render_note(inst, pitch, v, seed=7, sample_rate=SR, note_seconds=NOTE_SECONDS)
                         for v in metadata.VELOCITIES}
                peaks = [float(np.max(np.abs(notes[v]))) for v in metadata.VELOCITIES]
                assert all(a < b for a, b in zip(peaks, peaks[1:], strict=False)) and peaks[-1] <= 0.9 + 1e-6
                rms = {v: float(np.sqrt(np.mean(notes[v] ** 2))) for v in (25, 127)}
                cent = {v: _centroid(notes[v]) for v in (25, 127)}
                if not (rms[127] > rms[25] and cent[127] > cent[25]):
                    failures.append(f"{inst.name}@{pitch}: rms {rms[25]:.3f}->{rms[127]:.3f}, "
                                    f"centroid {cent[25]:.0f}->{cent[127]:.0f} Hz")
    assert not failures, "velocity 127 must be louder and brighter than 25: " + "; ".join(failures)


# ----------------------------------------------------------------------------- family distinctness


def _features(x: np.ndarray, pitch: int) -> np.ndarray:
    """Pitch-normalised timbre features: envelope shape, harmonic profile, noise/inharmonic energy."""
    f0 = midi_to_hz(pitch)
    hop = SR // 100
    env = np.sqrt(np.convolve(x**2, np.ones(hop) / hop, "valid")[::hop]) + 1e-6
    env_db = 20 * np.log10(env / env.max())
    shape = env_db[np.linspace(0, len(env_db) - 1, 12).astype(int)]
    attack = np.argmax(env > 0.5 * env.max()) / 100
    seg = x[int(0.04 * SR): int(0.3 * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 8192))
    freqs = np.fft.rfftfreq(8192, 1 / SR)
    harm = np.full(12, 1e-6)
    for k in range(1, 13):
        band = (freqs > 0.96 * k * f0) & (freqs < 1.04 * k * f0)
        if k * f0 < 0.45 * SR and band.any():
            harm[k - 1] = spec[band].max()
    harm_db = np.maximum(20 * np.log10(harm / harm.max() + 1e-6), -60)
    power = spec**2
    near = np.zeros(len(freqs), dtype=bool)
    for k in range(1, int(0.45 * SR / f0) + 1):
        near |= np.abs(freqs - k * f0) < 0.05 * f0
    inharmonic = 10 * np.log10(power[~near & (freqs > 0.5 * f0)].sum() / power.sum() + 1e-9)
    flatness = np.exp(np.mean(np.log(power + 1e-12))) / np.mean(power + 1e-12)
    centroid = (power * freqs).sum() / power.sum() / f0
    odd_even = np.mean(harm_db[2::2][:4]) - np.mean(harm_db[1::2][:4])
    return np.concatenate([shape / 10, harm_db / 10, [inharmonic / 10, np.log10(flatness + 1e-9),
                                                     np.log2(centroid), odd_even / 10, attack * 10]])


def test_families_are_distinct(dataset: tuple[Path, dict[str, int]]) -> None:
    """A 5-nearest-neighbour classifier on simple timbre features, fitted on the train instruments,
    recognises the family of held-out (valid/test) instruments far above chance (1/11)."""
    root, _ = dataset
    data: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    for split, examples in _load(root).items():
        feats, labels = [], []
        for key, ex in examples.items():
            if 36 <= ex["pitch"] <= 96:
                feats.append(_features(_read(root, split, key), ex["pitch"]))
                labels.append(ex["instrument_family"])
        data[split] = (feats, labels)
    x_train, y_train = np.array(data["train"][0]), np.array(data["train"][1])
    x_test = np.array(data["valid"][0] + data["test"][0])
    y_test = np.array(data["valid"][1] + data["test"][1])
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    z_train, z_test = (x_train - mu) / sd, (x_test - mu) / sd
    dist = ((z_test[:, None, :] - z_train[None]) ** 2).sum(-1)
    nearest = np.argsort(dist, axis=1)[:, :5]
    pred = np.array([np.bincount(y_train[row], minlength=len(metadata.FAMILIES)).argmax() for row in nearest])
    accuracy = float((pred == y_test).mean())
    recall = {f: round(float((pred[y_test == i] == i).mean()), 2) for i, f in enumerate(metadata.FAMILIES)}
    print(f"\nheld-out family accuracy {accuracy:.2f} (chance {1 / 11:.2f}); recall {recall}")
    assert accuracy >= 0.35, f"families hard to tell apart: accuracy {accuracy:.2f}, recall {recall}"
    assert sum(r > 2 / 11 for r in recall.values()) >= 8, recall
    # per-family mean feature vectors are pairwise apart
    centroids = np.array([z_train[y_train == i].mean(0) for i in range(len(metadata.FAMILIES))])
    gaps = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))[~np.eye(len(centroids), dtype=bool)]
    assert gaps.min() > 0.5, gaps.min()


def test_cell_dropout_per_split(tmp_path: Path) -> None:
    """Many sparse training instruments beside full valid grids: each split gets its own dropout."""
    root = tmp_path / "out"
    _small(root, instruments_per_family={"train": 1, "valid": 1}, pitch_step=5, velocities=(25, 75, 127),
           cell_dropout={"train": 0.9, "valid": 0.0})
    splits = _load(root)
    for split, full in (("train", False), ("valid", True)):
        by_pitch = defaultdict(set)
        for ex in splits[split].values():
            by_pitch[(ex["instrument_str"], ex["pitch"])].add(ex["velocity"])
        n_cells = sum(len(v) for v in by_pitch.values())
        if full:
            assert n_cells == 3 * len(by_pitch)
        else:
            assert n_cells < 1.5 * len(by_pitch)


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(("overrides", "name"), [
    ({"instruments_per_family": {"dev": 1}}, "instruments_per_family"),
    ({"instruments_per_family": {"train": -1}}, "instruments_per_family"),
    ({"velocities": (25, 64)}, "velocities"),
    ({"velocities": ()}, "velocities"),
    ({"note_seconds": 0.0}, "note_seconds"),
    ({"note_seconds": -1.0}, "note_seconds"),
    ({"cell_dropout": 1.0}, "cell_dropout"),
    ({"cell_dropout": -0.1}, "cell_dropout"),
    ({"cell_dropout": {"valid": 0.5, "test": 1.0}}, "cell_dropout"),
    ({"cell_dropout": {"valid": 0.5}}, "cell_dropout"),  # test has none
    ({"cell_dropout": {"valid": 0.5, "test": 0.1, "dev": 0.1}}, "cell_dropout"),
    ({"sample_rate": 4000}, "sample_rate"),
    ({"pitch_step": 0}, "pitch_step"),
    ({"workers": 0}, "workers"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters(tmp_path: Path, overrides: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        _small(tmp_path / "out", **overrides)
    assert not (tmp_path / "out").exists()
