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
from instrumentgen.generate.protocols import s2i_queries
from instrumentgen.metrics import evaluate as ev
from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity, cell_mask, tc_score
from instrumentgen.metrics.clap_score import Templates, s2i_score, t2i_scores
from instrumentgen.metrics.embed_notes import embed, manifest_batches, read_embeddings, write_embeddings
from instrumentgen.metrics.frechet import fad
from instrumentgen.metrics.timbre import (
    FamilyClassifier,
    condition_sensitivity,
    family_accuracy,
    instrument_retrieval,
    read_family_cells,
    read_family_notes,
)

DIM = 12
CELLS = [(p, v) for p in (40, 44, 48) for v in (25, 100)]
SEED = 7
FAMILY = {"t1": "bass", "t2": "flute", "v1": "bass", "v2": "flute", "v3": "organ",
          "r1": "bass", "r2": "bass", "r3": "flute", "r4": "organ"}


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
                "instrument_family_str": notes["instrument"].map(FAMILY),
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
    out["train"] = tmp_path / "train.parquet"
    write_split_cache(out["train"], ["r1", "r2", "r3", "r4"], rng)
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


def run_cli(files: dict[str, Path], out: Path, extra: tuple[str, ...] = ()) -> dict:
    ev.main(
        [
            *extra,
            "--train",
            str(files["train"]),
            "--seed",
            str(SEED),
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
    # S2I: every score leaves each test instrument's query cell out, on every row
    queries = s2i_queries(test.notes, SEED, instrument_column="instrument")
    assert len(queries) == 2
    test_s2i, s2i = test.without(queries), s2i.without(queries)
    assert len(s2i.notes) == len(test.notes) - 2
    row = metrics["s2i"]["baseline"]
    assert row["FAD-CLAP"] == pytest.approx(fad(test_s2i.z, s2i.z))
    assert row["s_CLAP*"] == pytest.approx(s2i_score(test_s2i, s2i)[0])
    assert row["TC_CLAP*"] == pytest.approx(tc_score(affinity, s2i)[0])
    assert row["retrieval"] == pytest.approx(instrument_retrieval(test_s2i, s2i).value)
    assert row["sensitivity"] == pytest.approx(condition_sensitivity(s2i).value)
    assert row["FAD-VGGish"] is None and metrics["fad_vggish"] == "n/a offline"
    truth = metrics["s2i"]["ground truth (test set)"]
    assert truth["FAD-CLAP"] == pytest.approx(0.0, abs=1e-9) and truth["s_CLAP*"] == pytest.approx(1.0)
    assert truth["retrieval"] is None  # trivial for the test set itself: "—"
    assert truth["sensitivity"] == pytest.approx(condition_sensitivity(test_s2i).value)
    timbre = metrics["timbre"]
    assert timbre["retrieval_chance"] == 0.5 and timbre["seed"] == SEED
    assert timbre["s2i_query_cells_left_out"] == 2
    details = json.loads((tmp_path / "out" / "details.json").read_text())
    assert details["s2i_queries"] == queries[["instrument", "pitch", "velocity"]].to_dict(orient="records")
    nearest = details["s2i"]["baseline"]["per_instrument"]["t1"]["nearest instrument"]
    assert nearest == instrument_retrieval(test_s2i, s2i).per_instrument[0].nearest
    # T2I family accuracy: a classifier fitted on the train split; p1 ("warm pad") names no family
    classifier = FamilyClassifier.fit(*read_family_notes(files["train"]))
    texts = {"p1": "warm pad", "p2": "dark bass"}
    expected_family = family_accuracy(classifier, t2i, texts)
    assert metrics["t2i"]["baseline"]["family accuracy"] == pytest.approx(expected_family.value)
    assert metrics["t2i"]["baseline"]["sensitivity"] == pytest.approx(condition_sensitivity(t2i).value)
    p1 = details["t2i"]["baseline"]["per_instrument"]["p1"]
    assert (p1["family"], p1["family status"], p1["family accuracy"]) == (None, "no family named", None)
    assert details["t2i"]["baseline"]["per_instrument"]["p2"]["family"] == "bass"
    family = timbre["family_classifier"]
    assert family["test_accuracy"] == pytest.approx(classifier.accuracy(*read_family_notes(files["test"])))
    assert family["chance"] == pytest.approx(1 / 3) and family["families"] == 3
    assert timbre["t2i_reference_sensitivity"]["ground truth (test set)"] == pytest.approx(
        condition_sensitivity(test).value
    )
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
    assert "chance 1/K = 0.5000" in md and "query cell" in md
    table2 = pd.read_csv(tmp_path / "out" / "table2.csv", index_col=0)
    assert table2.loc["ground truth (test set)", "retrieval ↑"] == "—"
    assert list(table2.columns) == [
        "FAD-VGGish ↓", "FAD-CLAP ↓", "s_CLAP* ↑", "TC_CLAP* ↑", "retrieval ↑", "sensitivity ↓"
    ]
    md3 = (tmp_path / "out" / "table3.md").read_text()
    assert "1 of 2 prompts" in md3 and f"{family['test_accuracy']:.4f} (ceiling)" in md3
    # the ceiling where p2 ("dark bass") was scored, by hand: the real bass test notes at p2's cells
    z_test, test_cells = read_family_cells(files["test"])
    right = classifier.predict(z_test) == test_cells["family"].to_numpy()
    p2 = t2i.notes[t2i.notes["instrument"] == "p2"]
    p2_cells = set(zip(p2["pitch"], p2["velocity"], strict=True))
    at = [
        hit for hit, (fam, p, v) in zip(right, test_cells.itertuples(index=False), strict=True)
        if fam == "bass" and (p, v) in p2_cells
    ]
    assert len(at) > 0
    ceiling = metrics["timbre"]["t2i_family_ceiling_at_cells"]["baseline"]
    assert ceiling == {"accuracy": pytest.approx(np.mean(at)), "notes": len(at)}
    assert f"its accuracy is {np.mean(at):.4f} ({len(at)} notes)" in md3
    assert r"$\downarrow$" in (tmp_path / "out" / "table3.tex").read_text()


def test_the_query_cell_does_not_count_in_any_s2i_score(files: dict[str, Path], tmp_path: Path) -> None:
    """A generation whose query cells are deliberately wrong scores the same; a wrong other cell does not."""
    notes, z = read_embeddings(files["s2i"])
    test_notes, test_z = read_embeddings(files["test"])
    queries = s2i_queries(test_notes, SEED, instrument_column="instrument")
    at_query = cell_mask(notes, queries)
    assert at_query.sum() == 2

    def with_wrong(mask: np.ndarray, name: str) -> Path:
        wrong = z.copy()
        wrong[mask] = -test_z[cell_mask(test_notes, notes[mask])]  # the opposite of the truth
        path = tmp_path / f"{name}.parquet"
        write_embeddings(notes.assign(feature=list(wrong.astype(np.float32))), path, {})
        return path

    def s2i_table(path: Path, seed: int = SEED) -> dict:
        out = tmp_path / f"out_{path.stem}_{seed}"
        ev.main(["--reference", str(files["valid"]), str(files["test"]), "--test", str(files["test"]),
                 "--reconstruction", str(path), "--s2i", f"baseline={path}", "--seed", str(seed),
                 "--out-dir", str(out)])
        return json.loads((out / "metrics.json").read_text())["s2i"]

    clean, query_wrong = s2i_table(files["s2i"]), s2i_table(with_wrong(at_query, "query_wrong"))
    for row in ("baseline", "codec reconstruction", "ground truth (test set)"):
        for column in ev.TABLE2_COLUMNS:
            if clean[row][column] is None:
                assert query_wrong[row][column] is None
            else:
                assert query_wrong[row][column] == pytest.approx(clean[row][column]), (row, column)
    other_wrong = s2i_table(with_wrong(np.isin(np.arange(len(z)), np.flatnonzero(~at_query)[:2]), "other"))
    assert other_wrong["baseline"]["s_CLAP*"] < clean["baseline"]["s_CLAP*"] - 0.05
    # another seed draws other query cells: the deliberately wrong cells count again
    seed = next(
        s for s in range(100) if not cell_mask(queries, s2i_queries(test_notes, s, "instrument")).any()
    )
    wrong_now = s2i_table(with_wrong(at_query, "query_wrong"), seed)["baseline"]["s_CLAP*"]
    assert wrong_now < s2i_table(files["s2i"], seed)["baseline"]["s_CLAP*"] - 0.05


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
        "--seed", str(SEED), "--out-dir", str(tmp_path / "out"),
    ]
    ev.main(args)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    flat = {k: v.reshape(-1, DIM) for k, v in frames.items()}
    # S2I sets (and the test set they are compared with) leave the query cells out; T2I does not
    keep = ~cell_mask(test_notes, s2i_queries(test_notes, SEED, instrument_column="instrument"))
    s2i_flat = {k: v[keep].reshape(-1, DIM) for k, v in frames.items() if k != "t2i"}
    assert metrics["s2i"]["ground truth (test set)"]["FAD-VGGish"] == pytest.approx(0.0, abs=1e-9)
    recon = metrics["s2i"]["codec reconstruction"]["FAD-VGGish"]
    assert recon == pytest.approx(fad(s2i_flat["test"], s2i_flat["recon"]))
    assert metrics["s2i"]["baseline"]["FAD-VGGish"] == pytest.approx(fad(s2i_flat["test"], s2i_flat["s2i"]))
    assert metrics["t2i"]["baseline"]["FAD-VGGish"] == pytest.approx(fad(flat["test"], flat["t2i"]))
    table = pd.read_csv(tmp_path / "out" / "table2.csv", index_col=0)
    shown = float(table.loc["baseline", "FAD-VGGish ↓"])
    assert shown == pytest.approx(fad(s2i_flat["test"], s2i_flat["s2i"]), abs=1e-4)
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


def test_retrieval_needs_two_test_instruments(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    single = tmp_path / "single.parquet"
    write_split_cache(single, ["t1"], np.random.default_rng(2))
    with pytest.raises(SystemExit):
        ev.main(["--reference", str(files["valid"]), "--test", str(single), "--s2i", f"baseline={single}",
                 "--out-dir", str(tmp_path / "o")])
    assert "test set: instrument retrieval needs at least 2 instruments to choose from, it has 1" in (
        capsys.readouterr().err
    )


def test_without_a_train_split_family_accuracy_is_not_shown(files: dict[str, Path], tmp_path: Path) -> None:
    ev.main(["--reference", str(files["valid"]), "--test", str(files["test"]),
             "--prompts", str(files["prompts"]), "--t2i", f"baseline={files['t2i']}",
             "--out-dir", str(tmp_path / "o")])
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["t2i"]["baseline"]["family accuracy"] is None
    assert metrics["timbre"]["family_classifier"] is None
    table = pd.read_csv(tmp_path / "o" / "table3.csv", index_col=0)
    assert table.loc["baseline", "family accuracy ↑"] == "—"
    assert "no train split" in (tmp_path / "o" / "table3.md").read_text()
