"""What the Snakemake rules get from the parameters (instrumentgen.workflow_settings), the inputs and
arguments they build (instrumentgen.workflow_args) and where their files go (instrumentgen.artifacts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from instrumentgen import artifacts
from instrumentgen import workflow_args as args
from instrumentgen import workflow_settings as settings
from instrumentgen.config import ParamsError, deep_merge, load_profile, validate_params
from instrumentgen.workspace import make_workspace, snakemake

VARIANTS = ["baseline", "random", "fixed", "magnet"]


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_profile("paper")


@pytest.fixture(scope="module")
def ci() -> dict:
    return load_profile("ci")


def changed(params: dict, overlay: dict) -> dict:
    return validate_params(deep_merge(params, overlay))


# ---------------------------------------------------------------- checks
@pytest.mark.parametrize(("missing", "why"), [("train", "models and references learn from it"),
                                              ("valid", "validation loss"),
                                              ("test", "S2I generation queries its instruments")])
def test_every_split_the_workflow_needs_is_named(ci, missing, why):
    params = changed(ci, {"data": {"splits": [s for s in ("train", "valid", "test") if s != missing]}})
    with pytest.raises(ParamsError, match=rf"data\.splits = .* must include '{missing}' \(.*{why}"):
        settings.check_workflow_params(params)


def test_an_empty_t2i_grid_is_refused(ci):
    params = changed(ci, {"generate": {"grid": {"pitch_min": 80, "pitch_max": 60}}})
    with pytest.raises(ParamsError, match=r"generate\.grid\.pitch_min 80 > pitch_max 60"):
        settings.check_workflow_params(params)


def test_a_bad_per_objective_training_setting_fails_before_any_job(ci):
    params = changed(ci, {"train": {"by_objective": {"magnet": {"processes": 2}}}})
    with pytest.raises(ParamsError, match=r"variant 'baseline'.*by_objective\.magnet\.processes"):
        settings.check_workflow_params(params)


@pytest.mark.parametrize("name", ["ci", "tiny", "paper"])
def test_shipped_profiles_pass_the_workflow_checks(name):
    settings.check_workflow_params(load_profile(name))


@pytest.mark.slow  # a Snakemake subprocess (~2 s)
def test_snakemake_names_a_missing_split_before_any_job(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    overlay = ws / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["data"]["splits"] = ["train", "valid"]
    overlay.write_text(yaml.safe_dump(params))
    proc = snakemake(ws, "-n", profile="ci", check=False)
    assert proc.returncode != 0
    assert "data.splits = ['train', 'valid'] must include 'test'" in proc.stdout + proc.stderr
    assert not (ws / "data").exists()


# ---------------------------------------------------------------- derived settings
def test_lm_size_takes_the_encoders_widths(paper, ci):
    lm = json.loads(settings.lm_json(paper))
    assert lm["clap_dim"] == 512 and lm["n_codebooks"] == 4 and lm["codebook_size"] == 1024
    assert lm["dim"] == 512 and lm["n_layers"] == 12  # params lm passes through
    assert list(lm) == sorted(lm)
    # LAION-CLAP's width whatever the small CLAP's setting; the small CLAP's own otherwise
    narrow = {"clap": {"small": {"dim": 256}}}
    assert settings.clap_dim(changed(paper, narrow)) == settings.LAION_EMBEDDING_DIM == 512
    assert settings.clap_dim(changed(ci, narrow)) == 256
    assert json.loads(settings.lm_json(ci))["codebook_size"] == 64


def test_training_launcher():
    assert settings.train_launcher(1) == "python"
    assert settings.train_launcher(2) == "python -m torch.distributed.run --standalone --nproc_per_node 2"


def test_training_settings_take_only_their_objectives_overrides(ci):
    params = changed(ci, {"train": {"by_objective": {"magnet": {"steps": 99}}}})
    magnet = json.loads(settings.train_json(params, "magnet"))
    baseline = json.loads(settings.train_json(params, "baseline"))
    assert magnet["steps"] == 99 and baseline["steps"] == ci["train"]["steps"]
    assert "by_objective" not in magnet and magnet["lr"] == baseline["lr"]


@pytest.mark.parametrize(
    ("name", "encoders", "training", "generation", "train_threads", "gen_threads"),
    [("paper", 1, 1, 1, 16, 16), ("tiny", 0, 1, 0, 1, 1), ("ci", 0, 1, 0, 1, 1)],
)
def test_gpu_tokens_and_threads_of_the_shipped_profiles(name, encoders, training, generation, train_threads,
                                                        gen_threads):
    params = load_profile(name)
    assert settings.gpu_encoders(params) == encoders
    assert settings.gpu_training(params) == training
    assert settings.gpu_generation(params) == generation
    assert settings.job_threads(params["train"]["threads"]) == train_threads
    assert settings.job_threads(params["generate"]["threads"]) == gen_threads


def test_threads_zero_means_all_cores():
    assert settings.job_threads(0) == settings.ALL_CORES == 16
    assert settings.job_threads(3) == 3


def test_gpu_tokens_follow_the_encoders(ci, paper):
    laion = changed(ci, {"clap": {"kind": "laion"}})
    assert settings.gpu_encoders(laion) == 1  # LAION-CLAP alone
    assert settings.gpu_generation(laion) == 0  # decodes with the fitted codec
    assert settings.gpu_training(changed(paper, {"train": {"processes": 4}})) == 4


def test_unused_encoder_code(paper, ci):
    assert settings.unused_encoder_code(paper) == ("codec/fitted.py", "clap/small.py")
    assert settings.unused_encoder_code(ci) == ("codec/dac_codec.py", "clap/laion.py")


def test_t2i_grid(paper, ci):
    grid = settings.t2i_grid(paper)
    assert grid["pitches"] == list(range(21, 109)) and grid["velocities"] == [25, 50, 75, 100, 127]
    assert settings.t2i_grid(ci) == {"pitches": [48, 60, 72], "velocities": [50, 100]}
    odd = changed(ci, {"generate": {"grid": {"pitch_min": 60, "pitch_max": 70, "pitch_step": 5,
                                             "velocities": [100, 25]}}})
    assert settings.t2i_grid(odd) == {"pitches": [60, 65, 70], "velocities": [25, 100]}
    assert json.loads(settings.t2i_grid_json(odd)) == settings.t2i_grid(odd)


def test_each_variant_decodes_with_its_objectives_section_only(paper):
    assert json.loads(settings.decoding_json(paper, "magnet")) == {"magnet": paper["generate"]["magnet"]}
    for variant in ("baseline", "random", "fixed"):
        sampling = paper["generate"]["sampling"]
        assert json.loads(settings.decoding_json(paper, variant)) == {"sampling": sampling}
    anchor = json.loads(settings.anchor_decoding_json(paper))
    assert anchor == {"magnet": paper["generate"]["magnet"], "sampling": paper["generate"]["sampling"]}


def test_embedders(paper, ci):
    assert settings.embedders(paper) == ["clap", "vggish"]
    assert settings.embedders(ci) == ["clap"]


def test_synthesizer_arguments(ci):
    assert settings.synthetic_cell_dropout(ci) == 0.05
    per_split = changed(ci, {"synthetic": {"cell_dropout": {"test": 0.1, "train": 0.8, "valid": 0.2}}})
    assert settings.synthetic_cell_dropout(per_split) == "train=0.8,valid=0.2,test=0.1"  # data.splits order
    assert settings.per_split({"train": 2, "valid": 1, "test": 1}, ["train", "valid", "test"]) == \
        "train=2,valid=1,test=1"


def test_reference_pitch_json(ci):
    assert settings.reference_pitch_json(ci) == "{}"
    assert json.loads(settings.reference_pitch_json(
        changed(ci, {"features": {"reference": {"pitch": {"bass": 40}}}}))) == {"bass": 40}


def test_prepare_environment(ci, paper):
    env = {"PATH": "/usr/bin", "HF_HUB_OFFLINE": "0"}
    settings.prepare_environment(ci, env, "/venv/bin/python")
    assert env["PATH"] == f"/venv/bin{os.pathsep}/usr/bin"
    assert env["HF_HUB_OFFLINE"] == "0" and env["TRANSFORMERS_OFFLINE"] == "1"  # a value already set is kept
    env = {"PATH": "/usr/bin"}
    settings.prepare_environment(paper, env, "/venv/bin/python")
    assert "HF_HUB_OFFLINE" not in env and "TRANSFORMERS_OFFLINE" not in env  # the paper profile downloads


def test_listening_result_files(tmp_path: Path):
    assert settings.listening_result_files(None) == {}
    assert settings.listening_result_files(str(tmp_path)) == {}
    (tmp_path / "mushra.csv").write_text("x\n")
    assert settings.listening_result_files(str(tmp_path)) == {"mushra": f"{tmp_path}/mushra.csv"}


# ---------------------------------------------------------------- paths
def test_paths_of_a_profile(ci, paper):
    paths = artifacts.Paths(ci)
    assert paths.manifest("{split}") == "data/ci/manifest/{split}.parquet"
    assert paths.store_audio("test") == "data/ci/resampled/test.npy"
    assert paths.lm("fixed") == artifacts.lm_file(ci, "fixed") == "data/ci/lm/fixed.pt"
    assert paths.generated("magnet", "t2i") == "data/ci/generated/magnet/t2i/manifest.parquet"
    assert paths.embeddings("clap", "test") == "data/ci/evaluation/clap/test.parquet"
    assert paths.log("prune_{split}") == "logs/ci/prune_{split}.log"
    assert paths.table4_md == "results/ci/listening/table4.md"
    assert paths.valid_curve("baseline") == "results/ci/train/baseline/valid.csv"
    assert paths.raw_split("train") == "data/ci/synthetic/nsynth-train"
    assert artifacts.Paths(paper).raw_split("train") == "data/paper/nsynth/nsynth-train"
    assert paths.codec == "data/ci/models/codec.npz" == paths.fitted_codec
    assert paths.clap == "data/ci/models/clap.npz" == paths.small_clap
    assert paths.encoder_reports() == ["results/ci/features/clap_retrieval.json"]
    assert artifacts.Paths(paper).encoder_reports() == []
    assert artifacts.Paths(paper).codec == "data/paper/models/dac/weights.pth"


def test_weights_files(paper):
    files = artifacts.weights_by_file(paper)
    assert files == {
        "data/paper/models/dac/weights.pth": "dac",
        "data/paper/models/clap/music_audioset_epoch_15_esc_90.14.pt": "clap",
        "data/paper/models/vggish/vggish-10086976.pth": "vggish",
    }
    pattern = re.compile(artifacts.weights_files_regex(paper))
    assert all(pattern.fullmatch(f) for f in files)
    for other in ("data/paper/models/dac/weightsXpth", "data/paper/models/dac/weights.pth.part",
                  "data/paper/models/codec.npz"):
        assert not pattern.fullmatch(other)


def test_two_weights_on_one_path_are_refused(paper):
    same = {"url": "https://x.org/weights.pth", "weights_dir": "data/paper/models/dac"}
    params = changed(paper, {"clap": {"laion": same}})
    with pytest.raises(ValueError, match=r"dac and clap weights would both be downloaded to data/paper/"):
        artifacts.weights_by_file(params)


# ---------------------------------------------------------------- inputs and arguments
def test_training_inputs(ci):
    paths = artifacts.Paths(ci)
    baseline = args.training_inputs(paths, "baseline")
    assert list(baseline) == ["train_codes", "train_clap", "valid_codes", "valid_clap"]
    assert baseline["valid_clap"] == "data/ci/features/clap_audio/valid.parquet"
    fixed = args.training_inputs(paths, "fixed")
    assert fixed["train_reference"] == "data/ci/features/reference/train.parquet"
    assert args.reference_args(baseline) == ""
    assert args.reference_args(fixed) == ("--train-reference data/ci/features/reference/train.parquet"
                                          " --valid-reference data/ci/features/reference/valid.parquet")


def test_generation_inputs_and_arguments(ci):
    paths = artifacts.Paths(ci)
    assert args.generation_inputs(paths, "random", "s2i") == {
        "model": "data/ci/lm/random.pt", "codec": "data/ci/models/codec.npz",
        "clap": "data/ci/features/clap_audio/test.parquet"}
    t2i = args.generation_inputs(paths, "random", "t2i")
    assert t2i["clap"] == "data/ci/features/clap_text/prompts.parquet"
    assert args.task_args(ci, "s2i") == ""
    assert args.task_args(ci, "t2i") == """--grid '{"pitches": [48, 60, 72], "velocities": [50, 100]}'"""


def test_vggish_inputs_and_arguments(paper, ci):
    inputs = args.vggish_inputs(artifacts.Paths(paper), VARIANTS)
    assert len(inputs) == 2 + 2 * len(VARIANTS)
    assert inputs["vggish_magnet_t2i"] == "data/paper/evaluation/vggish/magnet_t2i.parquet"
    text = args.vggish_args(inputs, VARIANTS)
    assert text.startswith("--vggish-test data/paper/evaluation/vggish/test.parquet --vggish-reconstruction ")
    assert " --vggish-s2i baseline=data/paper/evaluation/vggish/baseline_s2i.parquet random=" in text
    assert text.endswith("magnet=data/paper/evaluation/vggish/magnet_t2i.parquet")
    assert args.vggish_inputs(artifacts.Paths(ci), VARIANTS) == {}
    assert args.vggish_args({}, VARIANTS) == "--vggish-unavailable 'n/a offline'"


def test_variant_pairs():
    assert args.variant_pairs(["a", "b"], ["x.parquet", "y.parquet"]) == "a=x.parquet b=y.parquet"
    with pytest.raises(ValueError):
        args.variant_pairs(["a", "b"], ["x.parquet"])


def test_listening_and_companion_arguments(ci):
    paths = artifacts.Paths(ci)
    kit = args.listening_kit_inputs(paths, ["fixed", "magnet"])
    assert kit["anchor_like"] == "data/ci/lm/fixed.pt"  # the first variant's architecture
    assert kit["test_store"] == ["data/ci/resampled/test.npy", "data/ci/resampled/test.parquet"]
    assert args.listening_pairs(kit, ["fixed", "magnet"]) == (
        "--s2i fixed=data/ci/generated/fixed/s2i/manifest.parquet"
        " magnet=data/ci/generated/magnet/s2i/manifest.parquet"
        " --t2i fixed=data/ci/instruments/fixed/t2i/index.json"
        " magnet=data/ci/instruments/magnet/t2i/index.json")
    page = args.companion_inputs(paths, ["fixed"])
    assert page["prompts"] == ci["prompts"]["file"]
    assert args.companion_pairs(page, ["fixed"]) == (
        "--s2i fixed=data/ci/generated/fixed/s2i/manifest.parquet"
        " --s2i-exports fixed=data/ci/instruments/fixed/s2i/index.json"
        " --t2i fixed=data/ci/generated/fixed/t2i/manifest.parquet"
        " --t2i-exports fixed=data/ci/instruments/fixed/t2i/index.json")


def test_sha256_argument(paper):
    vggish = paper["evaluate"]["vggish"]
    assert args.sha256_arg(vggish) == f" --sha256 {vggish['sha256']}"
    assert args.sha256_arg(paper["codec"]["dac"]) == ""


def test_the_workflow_settings_do_not_import_pytorch():
    """Every `snakemake` call (dry runs, --lint, the report) parses the Snakefile: what common.smk imports
    stays light (importing PyTorch would cost every call about a second)."""
    code = (
        "import sys\n"
        "import instrumentgen.artifacts, instrumentgen.cluster, instrumentgen.codedeps\n"
        "import instrumentgen.config, instrumentgen.workflow_args, instrumentgen.workflow_settings\n"
        "print(sorted(m for m in ('torch', 'laion_clap', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
