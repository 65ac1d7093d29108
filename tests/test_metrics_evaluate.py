"""Embedding generated notes and the evaluation CLI (Tables 2 and 3, metrics JSON) on synthetic files."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from instrumentgen.features.cache import FeatureError, fixed_size_array
from instrumentgen.generate.manifest import write_manifest
from instrumentgen.metrics import evaluate as ev
from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity, tc_score
from instrumentgen.metrics.clap_score import Templates, s2i_score, t2i_scores
from instrumentgen.metrics.embed_notes import embed, manifest_batches, read_embeddings, write_embeddings
from instrumentgen.metrics.frechet import fad

DIM = 12
CELLS = [(p, v) for p in (40, 44, 48) for v in (25, 100)]


def notes_table(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"instrument": n, "pitch": p, "velocity": v} for n in names for p, v in CELLS])


def write_split_cache(path: Path, names: list[str], rng) -> None:
    """A CLAP audio cache as the pipeline writes it: numeric instrument ids plus instrument_str."""
    notes = notes_table(names)
    table = pa.Table.from_pandas(
        pd.DataFrame(
            {
                "note_str": [f"{r.instrument}-{r.pitch:03d}-{r.velocity:03d}" for r in notes.itertuples()],
                "instrument": notes["instrument"].astype("category").cat.codes.astype(int),
                "instrument_str": notes["instrument"],
                "pitch": notes["pitch"],
                "velocity": notes["velocity"],
            }
        ),
        preserve_index=False,
    )
    z = rng.normal(size=(len(notes), DIM)) + np.repeat(rng.normal(size=(len(names), DIM)), len(CELLS), axis=0)
    pq.write_table(table.append_column("feature", fixed_size_array(z.astype(np.float32))), path)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {"valid": tmp_path / "valid.parquet", "test": tmp_path / "test.parquet"}
    write_split_cache(out["valid"], ["v1", "v2", "v3"], rng)
    write_split_cache(out["test"], ["t1", "t2"], rng)
    test_notes, test_z = read_embeddings(out["test"])
    gen = test_notes.assign(feature=list((test_z + 0.8 * rng.normal(size=test_z.shape)).astype(np.float32)))
    out["s2i"] = tmp_path / "s2i.parquet"
    write_embeddings(gen, out["s2i"], {})
    prompts = ["p1", "p2"]
    t2i = notes_table(prompts).assign(
        feature=list(rng.normal(size=(len(prompts) * len(CELLS), DIM)).astype(np.float32))
    )
    out["t2i"] = tmp_path / "t2i.parquet"
    write_embeddings(t2i, out["t2i"], {})
    text = pa.table({"id": prompts, "text": ["warm pad", "dark bass"]})
    out["prompts"] = tmp_path / "prompts.parquet"
    pq.write_table(
        text.append_column("feature", fixed_size_array(rng.normal(size=(2, DIM)).astype(np.float32))),
        out["prompts"],
    )
    return out


def text_embeddings(files: dict[str, Path]) -> dict[str, np.ndarray]:
    values = pq.read_table(files["prompts"])["feature"].to_numpy(zero_copy_only=False)
    return {k: np.asarray(v, float) for k, v in zip(["p1", "p2"], values, strict=True)}


def run_cli(files: dict[str, Path], out: Path) -> dict:
    ev.main(
        [
            "--reference",
            str(files["valid"]),
            str(files["test"]),
            "--test",
            str(files["test"]),
            "--prompts",
            str(files["prompts"]),
            "--s2i",
            f"baseline={files['s2i']}",
            "--t2i",
            f"baseline={files['t2i']}",
            "--vggish-unavailable",
            "n/a offline",
            "--out-dir",
            str(out),
        ]
    )
    return json.loads((out / "metrics.json").read_text())


def test_tables_and_metrics_equal_the_metric_functions(files: dict[str, Path], tmp_path: Path) -> None:
    metrics = run_cli(files, tmp_path / "out")
    for stem in ("table2", "table3"):
        for suffix in (".md", ".tex", ".csv"):
            assert (tmp_path / "out" / f"{stem}{suffix}").stat().st_size > 0
    load = lambda key, label: Ensemble(*read_embeddings(files[key]), label)  # noqa: E731
    valid, test, s2i, t2i = load("valid", "v"), load("test", "t"), load("s2i", "s"), load("t2i", "g")
    reference = Ensemble(
        pd.concat([valid.notes, test.notes], ignore_index=True), np.vstack([valid.z, test.z]), "r"
    )
    affinity, templates = ReferenceAffinity.fit(reference), Templates.fit(reference)
    row = metrics["s2i"]["baseline"]
    assert row["FAD-CLAP"] == pytest.approx(fad(test.z, s2i.z))
    assert row["s_CLAP*"] == pytest.approx(s2i_score(test, s2i)[0])
    assert row["TC_CLAP*"] == pytest.approx(tc_score(affinity, s2i)[0])
    assert row["FAD-VGGish"] is None and metrics["fad_vggish"] == "n/a offline"
    truth = metrics["s2i"]["ground truth (test set)"]
    assert truth["FAD-CLAP"] == pytest.approx(0.0, abs=1e-9) and truth["s_CLAP*"] == pytest.approx(1.0)
    text = {
        k: v
        for k, v in zip(
            ["p1", "p2"],
            pq.read_table(files["prompts"])["feature"].to_numpy(zero_copy_only=False),
            strict=True,
        )
    }
    expected = t2i_scores(
        {k: np.asarray(v, float) for k, v in text.items()}, t2i, templates, affinity
    ).as_dict()
    for method, value in expected.items():
        assert metrics["t2i"]["baseline"][f"s_CLAP* {method}"] == pytest.approx(value)
    assert (tmp_path / "out" / "figure2.png").stat().st_size > 0
    assert (tmp_path / "out" / "figure2.svg").read_text().lstrip().startswith("<?xml")
    from instrumentgen.metrics.figure2 import covariances

    inst = next(t2i.instruments())
    covs, cells = covariances(text_embeddings(files)["p1"], inst, templates, affinity)
    np.testing.assert_allclose(
        covs["coloration"], affinity.restricted(cells), atol=1e-8
    )  # panel (c) = A_11,*
    np.testing.assert_allclose(covs["naive"], np.full((len(cells), len(cells)), 1 / len(cells)))  # panel (a)
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "n/a offline" in md and "ground truth (test set)" in md
    assert r"$\downarrow$" in (tmp_path / "out" / "table3.tex").read_text()


def test_bad_arguments_are_refused(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    base = [
        "--reference",
        str(files["valid"]),
        "--test",
        str(files["test"]),
        "--out-dir",
        str(tmp_path / "o"),
    ]
    for extra, message in [
        (["--s2i", "baseline"], "--s2i takes VARIANT=PATH"),
        (["--t2i", f"baseline={files['t2i']}"], "--t2i needs --prompts"),
        ([], "nothing to evaluate"),
        (["--s2i", f"baseline={files['t2i']}"], "instrument p1 is not in test set"),
        (
            ["--prompts", str(files["prompts"]), "--t2i", f"b={files['t2i']}", "--figure-prompt", "zz"],
            "Figure 2: prompt 'zz' has no generated instrument",
        ),
    ]:
        with pytest.raises(SystemExit):
            ev.main(base + extra)
        assert message in capsys.readouterr().err


def test_embedding_a_manifest_keeps_silent_notes_and_rejects_unreadable_ones(tmp_path: Path) -> None:
    rows = []
    for i, (p, v) in enumerate(CELLS[:3]):
        wav = tmp_path / "audio" / f"n{i}.wav"
        wav.parent.mkdir(exist_ok=True)
        audio = np.zeros(800) if i == 1 else 0.5 * np.sin(np.arange(800) * (0.05 + 0.01 * i))
        sf.write(wav, audio, 8000)
        rows.append({"instrument": "a", "pitch": p, "velocity": v, "path": f"audio/n{i}.wav"})
    write_manifest(pd.DataFrame(rows), tmp_path / "manifest.parquet")
    from instrumentgen.generate.manifest import read_manifest

    manifest = read_manifest(tmp_path / "manifest.parquet")
    rate, batches = manifest_batches(manifest, batch_size=2)
    table = embed(batches, len(manifest), lambda audio: np.stack([np.abs(audio).mean(1), audio.std(1)], 1))
    assert rate == 8000 and len(table) == 3 and table["feature"].iloc[1].tolist() == [0.0, 0.0]
    (tmp_path / "audio" / "n2.wav").write_bytes(b"not a wav")
    _, batches = manifest_batches(manifest, batch_size=2)
    with pytest.raises(FeatureError, match="n2.wav cannot be read"):
        embed(batches, len(manifest), lambda audio: audio[:, :2])


def write_vggish(path: Path, notes: pd.DataFrame, frames: np.ndarray) -> None:
    """VGGish embeddings as embed_notes writes them: ``feature`` ``[E, D]`` per note."""
    write_embeddings(notes.assign(feature=list(frames.astype(np.float32))), path, {}, feature="vggish")


def test_fad_vggish_uses_every_frame_of_every_note(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    test_notes, _ = read_embeddings(files["test"])
    t2i_notes, _ = read_embeddings(files["t2i"])
    frames = {
        "test": rng.normal(size=(len(test_notes), 4, DIM)),
        "recon": rng.normal(0.1, 1.0, size=(len(test_notes), 4, DIM)),
        "s2i": rng.normal(0.3, 1.2, size=(len(test_notes), 4, DIM)),
        "t2i": rng.normal(-0.2, 0.9, size=(len(t2i_notes), 4, DIM)),
    }
    paths = {k: tmp_path / f"vggish_{k}.parquet" for k in frames}
    for key in ("test", "recon", "s2i"):
        write_vggish(paths[key], test_notes, frames[key])
    write_vggish(paths["t2i"], t2i_notes, frames["t2i"])
    args = [
        "--reference", str(files["valid"]), str(files["test"]), "--test", str(files["test"]),
        "--reconstruction", str(files["s2i"]), "--prompts", str(files["prompts"]),
        "--s2i", f"baseline={files['s2i']}", "--t2i", f"baseline={files['t2i']}",
        "--vggish-test", str(paths["test"]), "--vggish-reconstruction", str(paths["recon"]),
        "--vggish-s2i", f"baseline={paths['s2i']}", "--vggish-t2i", f"baseline={paths['t2i']}",
        "--out-dir", str(tmp_path / "out"),
    ]
    ev.main(args)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    flat = {k: v.reshape(-1, DIM) for k, v in frames.items()}
    assert metrics["s2i"]["ground truth (test set)"]["FAD-VGGish"] == pytest.approx(0.0, abs=1e-9)
    recon = metrics["s2i"]["codec reconstruction"]["FAD-VGGish"]
    assert recon == pytest.approx(fad(flat["test"], flat["recon"]))
    assert metrics["s2i"]["baseline"]["FAD-VGGish"] == pytest.approx(fad(flat["test"], flat["s2i"]))
    assert metrics["t2i"]["baseline"]["FAD-VGGish"] == pytest.approx(fad(flat["test"], flat["t2i"]))
    table = pd.read_csv(tmp_path / "out" / "table2.csv", index_col=0)
    shown = float(table.loc["baseline", "FAD-VGGish ↓"])
    assert shown == pytest.approx(fad(flat["test"], flat["s2i"]), abs=1e-4)
    assert "VGGish" in metrics["fad_vggish"]
    # a set without VGGish embeddings while the test set has them, an extra set, a CLAP file: named
    for bad, message in [
        ([a for a in args if a not in ("--vggish-t2i", f"baseline={paths['t2i']}")],
         "these sets have no VGGish embeddings: [('t2i', 'baseline')]"),
        (args + ["--vggish-s2i", f"baseline={paths['s2i']}", f"fixd={paths['s2i']}"],
         "VGGish embeddings given for sets the tables do not have: [('s2i', 'fixd')]"),
        ([a.replace(str(paths["test"]), str(files["test"])) for a in args],
         f"test set (VGGish): {files['test']} holds '?' embeddings of shape (12, 12), not VGGish frames"),
    ]:
        with pytest.raises(SystemExit):
            ev.main(bad)
        assert message in capsys.readouterr().err


def test_a_partial_generation_is_named_with_its_variant(files: dict[str, Path], tmp_path: Path, capsys):
    notes, z = read_embeddings(files["s2i"])
    keep = (notes["instrument"] == "t1").to_numpy()
    partial = tmp_path / "partial.parquet"
    write_embeddings(notes[keep].assign(feature=list(z[keep].astype(np.float32))), partial, {})
    base = ["--reference", str(files["valid"]), "--test", str(files["test"])]
    base += ["--out-dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        ev.main(base + ["--s2i", f"random={partial}"])
    assert "random S2I: 1 test instruments have no generated cells (first: t2)" in capsys.readouterr().err
    t2i_notes, t2i_z = read_embeddings(files["t2i"])
    keep = (t2i_notes["instrument"] == "p2").to_numpy()
    write_embeddings(t2i_notes[keep].assign(feature=list(t2i_z[keep].astype(np.float32))), partial, {})
    with pytest.raises(SystemExit):
        ev.main(base + ["--prompts", str(files["prompts"]), "--t2i", f"fixed={partial}"])
    assert "fixed T2I: 1 prompts have no generated cells (first: p1)" in capsys.readouterr().err
    nan = tmp_path / "nan.parquet"
    z_nan = z.copy()
    z_nan[3, 0] = np.nan
    write_embeddings(notes.assign(feature=list(z_nan.astype(np.float32))), nan, {})
    with pytest.raises(SystemExit):
        ev.main(base + ["--s2i", f"magnet={nan}"])
    assert "magnet S2I: 1 embeddings have NaN/inf values (first: row 3)" in capsys.readouterr().err
