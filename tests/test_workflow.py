"""End to end: the data phase of the ci profile through Snakemake, re-run behaviour, lint."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from instrumentgen.config import REPO_ROOT
from instrumentgen.data.store import open_store
from instrumentgen.features.cache import read_features
from instrumentgen.listening.table4 import NO_RATINGS
from instrumentgen.workspace import make_workspace, snakemake

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
SPLITS = ("train", "valid", "test")


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The job-count table of a dry run: ``{rule: count}`` (empty when nothing is to be done)."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("Reasons:", 1)[0] if "Job stats:" in text else text
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def ci_workspace(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("ci") / "ws")
    snakemake(ws, "--cores", "2", profile="ci")
    return ws


def test_ci_data_phase_outputs(ci_workspace: Path):
    data = ci_workspace / "data" / "ci"
    params = yaml.safe_load((ci_workspace / "workflow/profiles/ci/params.yaml").read_text())
    instruments = {}
    for split in SPLITS:
        manifest = pd.read_parquet(data / "manifest" / f"{split}.parquet")
        assert manifest["pitch"].between(21, 108).all()
        assert set(manifest["velocity"]) <= set(params["data"]["velocities"])
        assert manifest["instrument_family_str"].nunique() == 11
        instruments[split] = set(manifest["instrument_str"])
        store = open_store(data / "resampled" / split)
        assert store.sample_rate == 24000 and store.num_frames == 12000  # 0.5 s at 24 kHz
        assert list(store.index["note_str"]) == list(manifest["note_str"])
        peak = np.abs(store.batch(np.arange(len(store)))).max(axis=1)
        assert (peak > 0.01).all(), "silent notes in the store"
        assert (ci_workspace / "logs" / "ci" / f"prune_{split}.log").is_file()
        reference = pd.read_parquet(data / "features" / "reference" / f"{split}.parquet")
        assert sorted(reference["instrument_str"]) == sorted(instruments[split])
        assert set(reference["note_str"]) <= set(manifest["note_str"])
    summary = pd.read_csv(ci_workspace / "results" / "ci" / "data" / "summary.csv")
    assert len(summary) == 33 and summary["notes"].sum() == sum(
        len(pd.read_parquet(data / "manifest" / f"{s}.parquet")) for s in SPLITS)
    assert (ci_workspace / "results" / "ci" / "data" / "coverage.png").stat().st_size > 1000
    assert not instruments["train"] & instruments["valid"] and not instruments["train"] & instruments["test"]
    raw = pd.concat(pd.read_json(data / "synthetic" / f"nsynth-{s}" / "examples.json", orient="index")
                    for s in SPLITS)
    assert (~raw["pitch"].between(21, 108)).any(), "synthetic data should exercise the pruning"
    assert set(raw["instrument_source_str"]) == {"acoustic", "electronic", "synthetic"}


def test_ci_features_outputs(ci_workspace: Path):
    data = ci_workspace / "data" / "ci"
    for split in SPLITS:
        index = pd.read_parquet(data / "resampled" / f"{split}.parquet")
        meta, codes = read_features(data / "features" / "codes" / f"{split}.parquet")
        assert meta.column("note_str").to_pylist() == index["note_str"].tolist()
        assert codes.dtype == np.int16 and codes.shape == (len(index), 4, 25)  # 0.5 s at 24 kHz, hop 480
        assert codes.min() >= 0 and codes.max() < 64
        meta, emb = read_features(data / "features" / "clap_audio" / f"{split}.parquet")
        assert emb.shape == (len(index), 512) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    prompts = pd.read_parquet(data / "features" / "clap_text" / "prompts.parquet")
    assert len(prompts) == 11 and len(prompts["feature"].iloc[0]) == 512
    quality = json.loads((ci_workspace / "results/ci/features/codec_quality.json").read_text())
    assert quality["original"]["n_notes"] == 40 and quality["original"]["share_within"] >= 0.9
    assert 0 < quality["reconstruction"]["share_within"] <= 1  # the ci codec is tiny (64 centroids)
    retrieval = json.loads((ci_workspace / "results/ci/features/clap_retrieval.json").read_text())
    t2a = retrieval["text_to_audio"]["instrument_level"]["instrument"]
    assert t2a["recall@1"] > t2a["chance_recall@1"] and t2a["recall@5"] > t2a["chance_recall@5"]


def test_report_has_the_results_of_every_phase(ci_workspace: Path):
    snakemake(ci_workspace, "--report", "report.html", profile="ci")
    html = (ci_workspace / "report.html").read_text(errors="replace")
    assert "coverage.png" in html and "summary.csv" in html
    for name in ("loss_curves.png", "pitch_accuracy.png", "table2.md", "table3.csv", "figure2.svg",
                 "t2i_spectrograms.png", "table4.md", "companion_cards.csv"):
        assert name in html, f"{name} is not in the report"
    assert 'href=\\"companion/index.html\\"' in html  # a link to the companion page beside the report
    assert "Tables 2 and 3 of the paper" in html  # the tables' caption (workflow/report/tables.rst)


def test_ci_train_outputs(ci_workspace: Path):
    """Every variant trained: a model file, curves with falling validation loss, the summary figure."""
    from instrumentgen.lm.checkpoint import load_model

    params = yaml.safe_load((ci_workspace / "workflow/profiles/ci/params.yaml").read_text())
    steps = params["train"]["steps"]
    for variant, objective in (("baseline", "ar"), ("random", "ar"), ("fixed", "ar"), ("magnet", "magnet")):
        model, meta = load_model(ci_workspace / "data" / "ci" / "lm" / f"{variant}.pt")
        assert meta["variant"] == variant and meta["step"] == steps and model.config.objective == objective
        assert model.config.codebook_size == 64 and model.config.dim == params["lm"]["dim"]
        run = ci_workspace / "results" / "ci" / "train" / variant
        valid = pd.read_csv(run / "valid.csv")
        assert valid["step"].iloc[-1] == steps and np.isfinite(valid["loss"]).all()
        assert valid["loss"].iloc[-1] < np.log(64) + 0.05  # at most chance after training
        assert json.loads((run / "summary.json").read_text())["steps"] == steps
        assert (ci_workspace / "logs" / "ci" / f"train_{variant}.log").is_file()
    summary = pd.read_csv(ci_workspace / "results" / "ci" / "train" / "summary.csv")
    assert list(summary["variant"]) == ["baseline", "random", "fixed", "magnet"]
    assert (ci_workspace / "results" / "ci" / "train" / "loss_curves.png").stat().st_size > 10_000


def test_paper_profile_plans_training_on_the_gpu(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    proc = snakemake(ws, "-n", "-p", "train")
    jobs = planned_jobs(proc)
    assert jobs["train_variant"] == 4 and jobs["loss_curves"] == 1
    text = proc.stdout + proc.stderr
    assert text.count("gpu=1") >= 4  # each paper training job holds a GPU token
    assert "instrumentgen.train --variant fixed" in text and "--train-reference" in text


def test_paper_profile_plans_generation_on_the_gpu(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    proc = snakemake(ws, "-n", "-p", "generate")
    jobs = planned_jobs(proc)
    generate_phase = {k: v for k, v in GENERATION_JOBS.items() if k not in EVALUATION_JOBS}
    assert {k: jobs[k] for k in generate_phase} == generate_phase and not set(EVALUATION_JOBS) & set(jobs)
    text = proc.stdout + proc.stderr
    assert "--task t2i" in text and '"pitches": [21, 22,' in text and "108]" in text  # the 88-key grid
    assert text.count("gpu=1") >= 4 + 8  # training and generation jobs hold a GPU token


def test_paper_profile_plans_vggish_for_every_set_of_the_tables(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    features = snakemake(ws, "-n", "-p", "features")
    assert planned_jobs(features)["fetch_weights"] == 3  # with the other weights: before any training
    assert "fetch_weights vggish --dir data/paper/models/vggish" in features.stdout + features.stderr
    proc = snakemake(ws, "-n", "-p", "evaluate")
    jobs = planned_jobs(proc)
    assert jobs["embed_test_vggish"] == 1 and jobs["embed_reconstruction"] == 2
    assert jobs["embed_generated"] == 2 * 8  # CLAP and VGGish for 4 variants x 2 tasks
    text = proc.stdout + proc.stderr
    assert "--embedder vggish --model data/paper/models/vggish/vggish-10086976.pth" in text
    assert "--vggish-test data/paper/evaluation/vggish/test.parquet" in text and "n/a offline" not in text


def test_changing_a_training_parameter_retrains_only(ci_copy: Path):
    overlay = ci_copy / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["train"]["lr"] = 0.0005
    overlay.write_text(yaml.safe_dump(params))
    expected = {"train_variant": 4, "loss_curves": 1, "all": 1, **GENERATION_JOBS}
    assert planned_jobs(snakemake(ci_copy, "-n", profile="ci")) == expected


# downstream of every generation
EVALUATION_JOBS = {
    "embed_generated": 8, "evaluate_tables": 1, "prompt_spectrograms": 1, "listening_kit": 1, "table4": 1,
    "companion_page": 1,
}
GENERATION_JOBS = {
    "generate_instruments": 8, "export_instruments": 8, "pitch_accuracy": 8, "pitch_summary": 1,
    **EVALUATION_JOBS,
}


def regeneration_jobs(variants: int) -> dict[str, int]:
    """Jobs downstream of regenerating ``variants`` variants (both tasks each)."""
    per_task = {"generate_instruments", "export_instruments", "pitch_accuracy", "embed_generated"}
    return {rule: 2 * variants if rule in per_task else n for rule, n in GENERATION_JOBS.items()}


@pytest.mark.parametrize(
    ("section", "change", "variants"),
    [("sampling", {"temperature": 0.5}, 3), ("magnet", {"steps": [3, 1, 1, 1]}, 1)],
    ids=["ar-sampling", "magnet-decoding"],
)
def test_changing_a_decoding_parameter_regenerates_only_its_variants(ci_copy: Path, section, change,
                                                                     variants):
    """Each variant's generation gets only its own decoder's settings: AR sampling regenerates the
    three AR variants, MAGNeT's settings the MAGNeT variant."""
    overlay = ci_copy / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["generate"][section] = change
    overlay.write_text(yaml.safe_dump(params))
    assert planned_jobs(snakemake(ci_copy, "-n", profile="ci")) == {**regeneration_jobs(variants), "all": 1}


def test_changing_one_objectives_training_retrains_only_its_variants(ci_copy: Path):
    """``train.by_objective.magnet`` reaches the MAGNeT variant's training alone: the AR variants' settings,
    models and generations are left as they are."""
    overlay = ci_copy / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["train"]["by_objective"] = {"magnet": {"steps": params["train"]["steps"] + 10}}
    overlay.write_text(yaml.safe_dump(params))
    expected = {**regeneration_jobs(1), "train_variant": 1, "loss_curves": 1, "all": 1}
    assert planned_jobs(snakemake(ci_copy, "-n", profile="ci")) == expected


def test_ci_generation_outputs(ci_workspace: Path):
    """S2I generates exactly the test instruments' cells, T2I the grid for every prompt; every instrument
    is exported (SFZ, SF2, demo rendered by FluidSynth); the pitch reports and their summary exist."""
    from instrumentgen.generate.manifest import read_manifest

    data, results = ci_workspace / "data" / "ci", ci_workspace / "results" / "ci"
    test = pd.read_parquet(data / "manifest" / "test.parquet")
    test_cells = sorted(zip(test["instrument_str"], test["pitch"], test["velocity"], strict=True))
    prompts = pd.read_parquet(data / "features" / "clap_text" / "prompts.parquet")["id"]
    for variant in ("baseline", "random", "fixed", "magnet"):
        s2i = read_manifest(data / "generated" / variant / "s2i" / "manifest.parquet")
        assert sorted(zip(s2i["instrument"], s2i["pitch"], s2i["velocity"], strict=True)) == test_cells
        assert set(s2i["decoding_steps"]) == ({4 + 2 + 2 + 2} if variant == "magnet" else {25 + 3})
        t2i = read_manifest(data / "generated" / variant / "t2i" / "manifest.parquet")
        assert set(t2i["instrument"]) == set(prompts) and len(t2i) == len(prompts) * 3 * 2
        assert all(Path(p).is_file() for p in (*s2i["path"], *t2i["path"]))
        for task, manifest in (("s2i", s2i), ("t2i", t2i)):
            index = json.loads((data / "instruments" / variant / task / "index.json").read_text())
            assert index["n_instruments"] == manifest["instrument"].nunique()
            for entry in index["instruments"].values():
                for key in ("sfz", "sf2", "demo_wav"):
                    assert (ci_workspace / entry[key]).stat().st_size > 100
            report = json.loads((results / "generate" / variant / task / "pitch.json").read_text())
            assert report["n_notes"] == 30 and 0 <= report["share_within"] <= 1
    summary = pd.read_csv(results / "generate" / "pitch_accuracy.csv")
    assert len(summary) == 8 and set(summary["task"]) == {"s2i", "t2i"}
    metrics = json.loads((results / "metrics" / "pitch_accuracy.json").read_text())
    assert metrics["magnet/s2i"]["target"] == 0.85 and metrics["baseline/t2i"]["target"] == 0.85
    assert metrics["magnet/s2i"]["decoder"] == "magnet" and metrics["baseline/t2i"]["decoder"] == "ar"


def test_ci_evaluation_outputs(ci_workspace: Path):
    """Tables 2 and 3 (Markdown, LaTeX, CSV), Figure 2 and the metrics JSON, with every variant and the
    reference rows; FAD-VGGish says n/a offline."""
    results = ci_workspace / "results" / "ci"
    metrics = json.loads((results / "metrics" / "evaluation.json").read_text())
    variants = ["baseline", "random", "fixed", "magnet"]
    assert set(metrics["s2i"]) == {"ground truth (test set)", "codec reconstruction", *variants}
    assert set(metrics["t2i"]) == set(variants)
    truth = metrics["s2i"]["ground truth (test set)"]
    assert truth["FAD-CLAP"] == pytest.approx(0.0, abs=1e-9) and truth["s_CLAP*"] == pytest.approx(1.0)
    for row in (*metrics["s2i"].values(), *metrics["t2i"].values()):
        assert row["FAD-VGGish"] is None and 0.0 <= row["TC_CLAP*"] <= 1.0 + 1e-9
    for variant in variants:
        assert metrics["s2i"][variant]["FAD-CLAP"] > 0
        t2i = metrics["t2i"][variant]
        assert all(-1 <= t2i[f"s_CLAP* {m}"] <= 1 for m in ("naive", "translation", "coloration"))
    assert metrics["fad_vggish"] == "n/a offline"
    for stem in ("table2", "table3"):
        md = (results / "evaluate" / f"{stem}.md").read_text()
        assert "n/a offline" in md and all(v in md for v in variants)
        assert (results / "evaluate" / f"{stem}.tex").read_text().startswith("\\begin{table}")
        assert len(pd.read_csv(results / "evaluate" / f"{stem}.csv")) == (6 if stem == "table2" else 4)
    for suffix in (".png", ".svg"):
        assert (results / "evaluate" / f"figure2{suffix}").stat().st_size > 1000
        assert (results / "evaluate" / f"t2i_spectrograms{suffix}").stat().st_size > 1000


def test_ci_listening_kit_and_table4(ci_workspace: Path, tmp_path: Path):
    """The ci run builds the webMUSHRA kit (3 MUSHRA trials, 2 MOS prompts, every file it names) and
    Table 4 without ratings; given webMUSHRA result files through params, Table 4 is computed from them
    and nothing else reruns."""
    kit_dir = ci_workspace / "data" / "ci" / "listening" / "kit"
    kit = json.loads((kit_dir / "kit.json").read_text())
    assert len(kit["mushra"]["trials"]) == 3 and len(kit["mos"]["trials"]) == 2
    config = yaml.safe_load((kit_dir / kit["config"]).read_text())
    pages = [p for entry in config["pages"] for p in (entry[1:] if isinstance(entry, list) else [entry])]
    for page in pages:
        for path in [page.get("reference"), *page.get("stimuli", {}).values()]:
            assert path is None or (kit_dir / path).is_file()
    assert NO_RATINGS in (ci_workspace / "results" / "ci" / "listening" / "table4.md").read_text()

    ws = Path(shutil.copytree(ci_workspace, tmp_path / "ws", symlinks=True))
    results = tmp_path / "webmushra" / "results" / kit["test_id"]
    results.mkdir(parents=True)
    rows = [["session_test_id", "participant", "session_uuid", "trial_id", "rating_stimulus", "rating_score",
             "rating_time", "rating_comment"]]
    for p, participant in enumerate(("a", "b")):
        for trial in kit["mushra"]["trials"]:
            for s, stimulus in enumerate(["reference", *kit["mushra"]["conditions"], "anchor"]):
                rows.append([kit["test_id"], participant, f"u{p}", trial, stimulus, 100 - 10 * s, 1, ""])
    with open(results / "mushra.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    overlay = ws / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["listening"]["results"] = str(results)
    overlay.write_text(yaml.safe_dump(params))
    assert planned_jobs(snakemake(ws, "-n", profile="ci")) == {"table4": 1, "all": 1}
    snakemake(ws, profile="ci")
    table = (ws / "results" / "ci" / "listening" / "table4.md").read_text()
    assert "90.0 ± 0.0 (n=6)" in table and "2 of 2 participants kept" in table  # baseline: 100 - 10


def sfz_regions(path: Path) -> list[dict[str, str]]:
    """The ``<region>`` opcodes of an exported SFZ file, parsed independently of the exporter."""
    return [dict(op.split("=", 1) for op in line.split()[1:])
            for line in path.read_text().splitlines() if line.startswith("<region>")]


@pytest.mark.browser
def test_ci_companion_page_in_a_browser(ci_workspace: Path):
    """The ci run's companion page, served and opened in headless Chromium: no console errors, every
    player and picture loads, and a key starts the sample that the exported SFZ maps it to (set
    INSTRUMENTGEN_SCREENSHOTS=DIR to keep the screenshot)."""
    import os

    from browser import check_page_media, chromium, console_errors, serve, wait_for
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = ci_workspace / "results" / "ci" / "companion"
    cards = pd.read_csv(page / "cards.csv")
    variants = yaml.safe_load((ci_workspace / "params.yaml").read_text())["variants"]
    for (task, _), sources in cards.groupby(["task", "group"], sort=False)["source"]:
        assert list(sources) == (["ground truth"] if task == "s2i" else []) + variants
    for task in ("s2i", "t2i"):  # every S2I test instrument and every prompt generated
        generated = pd.read_parquet(ci_workspace / f"data/ci/generated/{variants[0]}/{task}/manifest.parquet")
        assert set(cards.loc[cards["task"] == task, "group"]) == set(generated["instrument"])
    prompt = sorted(cards.loc[cards["task"] == "t2i", "group"])[0]
    sfz = next((ci_workspace / "data/ci/instruments/magnet/t2i/instruments" / prompt).glob("*.sfz"))
    with serve(page) as url, chromium() as driver:
        driver.get(url)
        wait_for(driver, "window.instrumentgen && window.instrumentgen.ready")
        assert check_page_media(driver, page) == 2 * len(cards) + (cards["source"] != "ground truth").sum()
        button = driver.find_element(By.CSS_SELECTOR, f'button.select[data-card="t2i/{prompt}/magnet"]')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        button.click()
        for letter, key in (("a", 60), ("t", 66), ("k", 72)):
            before = driver.execute_script("return window.instrumentgen.notesStarted;")
            ActionChains(driver).key_down(letter).pause(0.1).key_up(letter).perform()
            wait_for(driver, f"window.instrumentgen.notesStarted > {before}")
            note = driver.execute_script("return window.instrumentgen.lastNote;")
            region = next(r for r in sfz_regions(sfz) if int(r["lokey"]) <= key <= int(r["hikey"])
                          and int(r["lovel"]) <= 100 <= int(r["hivel"]))
            assert (note["key"], note["pitch"], note["layerVelocity"]) == (
                key, int(region["pitch_keycenter"]), int(region["sample"].rsplit("-", 1)[1].split(".")[0]))
        ActionChains(driver).key_down("a").perform()
        if os.environ.get("INSTRUMENTGEN_SCREENSHOTS"):
            keep = Path(os.environ["INSTRUMENTGEN_SCREENSHOTS"])
            keep.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(keep / "companion_ci.png"))
        ActionChains(driver).key_up("a").perform()
        assert console_errors(driver) == []


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("src/instrumentgen/lm/magnet.py", {"train_variant": 4, "loss_curves": 1, "train": 1}),
        ("src/instrumentgen/train/curves.py", {"loss_curves": 1, "train": 1}),
    ],
)
def test_changing_training_code_reruns_what_runs_it(ci_copy: Path, module: str, expected: dict):
    path = ci_copy / module
    path.write_text(path.read_text() + "\n# changed\n")
    assert planned_jobs(snakemake(ci_copy, "-n", "train", profile="ci")) == expected


def test_second_run_is_a_no_op(ci_workspace: Path):
    assert planned_jobs(snakemake(ci_workspace, "-n", profile="ci")) == {}


def test_paper_profile_plans_the_data_phase(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    jobs = planned_jobs(snakemake(ws, "-n", "data"))
    assert jobs == {"nsynth": 3, "prune": 3, "resample": 3, "data_summary": 1, "data": 1}


@pytest.fixture
def ci_copy(ci_workspace: Path, tmp_path: Path) -> Path:
    """A copy of the finished ci workspace (times preserved) that a test may change."""
    return Path(shutil.copytree(ci_workspace, tmp_path / "ws", symlinks=True))


def mtimes(root: Path) -> dict[Path, int]:
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*.parquet")}


def test_paper_profile_plans_the_features_phase(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    jobs = planned_jobs(snakemake(ws, "-n", "features"))
    assert jobs["fetch_weights"] == 3 and jobs["encode_codes"] == 3  # DAC, LAION-CLAP and VGGish weights
    assert jobs["embed_audio"] == 3 and jobs["embed_prompts"] == 1 and jobs["codec_quality"] == 1
    assert "bootstrap_codec" not in jobs and "bootstrap_clap" not in jobs and "clap_retrieval" not in jobs


def test_changing_a_resample_parameter_reruns_only_resample(ci_copy: Path):
    data = ci_copy / "data" / "ci"
    before = mtimes(data)
    overlay = ci_copy / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["resample"]["quality"] = "VHQ"
    overlay.write_text(yaml.safe_dump(params))
    assert planned_jobs(snakemake(ci_copy, "-n", "data", profile="ci")) == {"resample": 3, "data": 1}
    snakemake(ci_copy, "--cores", "2", "data", profile="ci")
    after = mtimes(data)
    assert {p for p in before if after[p] != before[p]} == {p for p in before if p.parts[0] == "resampled"}
    assert planned_jobs(snakemake(ci_copy, "-n", "data", profile="ci")) == {}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("src/instrumentgen/data/store.py", {"resample": 3, "data": 1}),
        ("src/instrumentgen/data/manifest.py", {"prune": 3, "resample": 3, "data_summary": 1, "data": 1}),
        ("src/instrumentgen/synth/families.py",
         {"synthesize": 1, "prune": 3, "resample": 3, "data_summary": 1, "data": 1}),
    ],
)
def test_changing_code_reruns_the_rules_that_run_it(ci_copy: Path, module: str, expected: dict):
    path = ci_copy / module
    path.write_text(path.read_text() + "\n# changed\n")
    assert planned_jobs(snakemake(ci_copy, "-n", "data", profile="ci")) == expected


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("src/instrumentgen/clap/small.py",
         {"bootstrap_clap": 1, "clap_retrieval": 1, "embed_audio": 3, "embed_prompts": 1, "features": 1}),
        ("src/instrumentgen/codec/kmeans.py",
         {"bootstrap_codec": 1, "codec_quality": 1, "encode_codes": 3, "features": 1}),
        ("src/instrumentgen/codec/dac_codec.py", {}),  # the ci profile uses the fitted codec
    ],
)
def test_changing_encoder_code_reruns_only_its_features(ci_copy: Path, module: str, expected: dict):
    path = ci_copy / module
    path.write_text(path.read_text() + "\n# changed\n")
    assert planned_jobs(snakemake(ci_copy, "-n", "features", profile="ci")) == expected


def test_snakemake_lint_clean():
    proc = subprocess.run([BIN / "snakemake", "--lint"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_ruff_clean():
    proc = subprocess.run([BIN / "ruff", "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_dvc_records_the_data_stage_of_every_profile():
    proc = subprocess.run([BIN / "dvc", "stage", "list"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for profile in ("paper", "tiny", "ci"):
        assert f"data@{profile}" in proc.stdout
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for phase in ("data", "features", "train", "generate", "evaluate"):
        assert f"{phase}@tiny" in proc.stdout
        assert all(next(iter(o.values()))["persist"] for o in stages[phase]["do"]["outs"])
    assert ".snakemake/" in (REPO_ROOT / ".dvcignore").read_text()


def find_key(tree, key: str):
    """The first value under ``key`` anywhere in nested dicts (``dvc metrics show --json`` nests by
    revision and file)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = find_key(value, key)
            if found is not None:
                return found
    return None


def test_reviewer_workflow_dvc_repro_push_pull_then_nothing_to_do(tmp_path: Path):
    """The reviewer workflow (README): `dvc repro evaluate@ci` runs Snakemake phase by phase and
    records every output; `dvc status` is then clean. A fresh checkout that pulls the artifacts from a
    (local) DVC remote is clean too, and after `snakemake --touch` Snakemake has nothing to do."""
    dvc = str(BIN / "dvc")

    def run(ws: Path, *args: str) -> str:
        proc = subprocess.run([dvc, *args], cwd=ws, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def checkout(name: str) -> Path:
        ws = make_workspace(tmp_path / name)
        (ws / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
        return ws

    ws = checkout("ws")
    run(ws, "init", "--no-scm")
    run(ws, "repro", "evaluate@ci")  # and every ci stage upstream of it
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert {o["path"] for o in lock["data@ci"]["outs"]} == {
        "data/ci/synthetic", "data/ci/manifest", "data/ci/resampled", "results/ci/data"}
    assert {o["path"] for o in lock["train@ci"]["outs"]} == {"data/ci/lm", "results/ci/train"}
    assert {o["path"] for o in lock["evaluate@ci"]["outs"]} == {
        "data/ci/evaluation", "results/ci/evaluate", "results/ci/metrics/evaluation.json",
        "data/ci/listening", "results/ci/listening", "results/ci/metrics/listening.json",
        "results/ci/companion"}
    clean = "Data and pipelines are up to date"
    assert clean in run(ws, "status", "evaluate@ci", "--with-deps")
    assert "didn't change" in run(ws, "repro", "evaluate@ci")
    shown = json.loads(run(ws, "metrics", "show", "--json"))
    recorded = json.loads((ws / "results/ci/metrics/evaluation.json").read_text())
    # dvc drops null values (FAD-VGGish offline)
    expected = {row: {k: v for k, v in c.items() if v is not None} for row, c in recorded["s2i"].items()}
    assert find_key(shown, "s2i") == expected, "dvc metrics show does not show the evaluation"
    plots = json.loads(run(ws, "plots", "show", "--json"))
    assert plots["data"]["results/ci/train/valid_loss"], "the ci validation-loss plot has no data"

    remote = tmp_path / "remote"
    run(ws, "remote", "add", "-d", "local", str(remote))
    run(ws, "push", "evaluate@ci", "--with-deps")
    fresh = checkout("fresh")  # what a reviewer's clone holds: the code, dvc.lock, the metrics in git
    run(fresh, "init", "--no-scm")
    shutil.copy2(ws / "dvc.lock", fresh / "dvc.lock")
    shutil.copy2(ws / ".dvc" / "config", fresh / ".dvc" / "config")
    shutil.copytree(ws / "results" / "ci" / "metrics", fresh / "results" / "ci" / "metrics")
    run(fresh, "pull", "evaluate@ci", "--with-deps")
    assert clean in run(fresh, "status", "evaluate@ci", "--with-deps")
    table2 = "results/ci/evaluate/table2.md"
    assert (fresh / table2).read_text() == (ws / table2).read_text()
    # Before --touch, only modification times (the pulled files' checkout times) may make Snakemake
    # want to run anything: no missing output, nothing else.
    dry = snakemake(fresh, "-n", profile="ci")
    reasons = re.findall(r"reason: ([^:\n]+)", dry.stdout + dry.stderr)
    assert set(reasons) <= {"Updated input files", "Input files updated by another job"}, set(reasons)
    snakemake(fresh, "--touch", "--cores", "1", profile="ci")
    assert planned_jobs(snakemake(fresh, "-n", profile="ci")) == {}
