"""Training of the codec LM: learning, condition dropout, exact resume after a kill, DDP under torchrun,
and the errors raised before the first step."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from instrumentgen.lm.checkpoint import CheckpointError, load_model, read_checkpoint
from instrumentgen.lm.conditioners import CONDITIONS
from instrumentgen.testing import synthetic_splits, train_run
from instrumentgen.train.cli import build_run, parse_args
from instrumentgen.train.data import DropoutSettings, TrainingDataError, condition_drop, load_split
from instrumentgen.train.loop import Trainer, TrainRun, batch_rows
from instrumentgen.train.schedule import lr_factor
from instrumentgen.train.settings import (
    TrainSettings,
    cpu_has_native_bf16,
    settings_for_objective,
    uses_bf16,
)

LM = {
    "dim": 32,
    "n_layers": 2,
    "n_heads": 2,
    "category_dim": 8,
    "clap_n_q": 2,
    "clap_bins": 16,
    "max_frames": 16,
    "codebook_size": 32,
    "clap_dim": 8,
}
CARD, FRAMES, CLAP = 32, 12, 8


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("caches")
    return synthetic_splits(folder, 4, 10, FRAMES, CARD, CLAP)


def make_run(caches, tmp: Path, variant="baseline", lm=None, **settings) -> TrainRun:
    base = {
        "steps": 30,
        "batch_size": 8,
        "warmup_steps": 3,
        "checkpoint_every": 10,
        "log_every": 5,
        "valid_every": 10,
        "valid_max_notes": 16,
        "threads": 1,
    }
    return train_run(tmp, caches, variant, lm or LM, {**base, **settings}, seed=7)


def cli_args(caches, tmp: Path, variant="baseline", lm=None, **settings) -> list[str]:
    run = make_run(caches, tmp, variant, **settings)
    args = [
        "--variant",
        variant,
        "--seed",
        "7",
        "--lm",
        json.dumps(lm or LM),
        "--settings",
        json.dumps(run.settings.to_dict()),
        "--model-out",
        str(run.model_out),
        "--results-dir",
        str(run.results_dir),
        "--checkpoint-root",
        str(run.checkpoint_root),
    ]
    for split in ("train", "valid"):
        args += [
            f"--{split}-codes",
            str(caches[split]["codes"]),
            f"--{split}-clap",
            str(caches[split]["clap"]),
            f"--{split}-reference",
            str(caches[split]["reference"]),
        ]
    return args


def child_env() -> dict[str, str]:
    src = Path(__file__).resolve().parents[1] / "src"
    return {
        **os.environ,
        "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


# ------------------------------------------------------------------------------------------- learning
@pytest.mark.parametrize("variant", ["baseline", "magnet"])
def test_loss_falls_when_overfitting_a_tiny_batch(tmp_path: Path, variant: str):
    """The trainer's own step (Trainer.train_step) on a train split of one batch: 8 notes, batch 8."""
    tiny = synthetic_splits(tmp_path / "tiny", 2, 4, FRAMES, CARD, CLAP)
    run = make_run(tiny, tmp_path, variant, steps=120, lr=1e-2, cfg_dropout=0.0, attribute_dropout=0.0)
    trainer = Trainer(run)
    trainer.build()
    assert len(trainer.train_data) == 8
    losses = [trainer.train_step()[0].loss.item() for _ in range(120)]
    assert trainer.step == 120
    assert losses[0] > np.log(CARD) - 0.3  # starts near chance
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses[::10]


def test_training_writes_model_curves_and_summary(caches, tmp_path: Path):
    run = make_run(caches, tmp_path, "fixed")
    summary = Trainer(run).run()
    model, meta = load_model(run.model_out)
    assert meta["variant"] == "fixed" and meta["step"] == 30 and meta["scheme"] == "fixed"
    train = pd.read_csv(run.results_dir / "train.csv")
    valid = pd.read_csv(run.results_dir / "valid.csv")
    assert list(train["step"]) == [5, 10, 15, 20, 25, 30] and list(valid["step"]) == [10, 20, 30]
    assert {f"ce_{k}" for k in range(4)} | {f"acc_{k}" for k in range(4)} <= set(valid.columns)
    assert valid["loss"].iloc[-1] < valid["loss"].iloc[0]
    assert json.loads((run.results_dir / "summary.json").read_text())["final_valid"]["loss"] == pytest.approx(
        valid["loss"].iloc[-1], rel=1e-4
    )
    assert summary["steps"] == 30 and summary["objective"] == "ar"
    assert train["lr"].iloc[-1] < train["lr"].max()  # cosine annealing


def test_validation_reports_the_loss_under_inference_conditions(caches, tmp_path: Path):
    """``*_inference`` columns: family and source nulled, as generation sees them (nothing else changes)."""
    trainer = Trainer(make_run(caches, tmp_path, "baseline"))
    trainer.build()
    with torch.no_grad():
        for module in trainer.model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                module.weight.normal_(0, 0.3)  # large enough that every condition token matters
    row = trainer.validate()
    assert {"loss_inference", "ce_0_inference", "acc_0_inference"} <= set(row)
    assert abs(row["loss_inference"] - row["loss"]) > 1e-4
    # make family and source tokens equal to their nulls: the two validations must then agree
    cond = trainer.model.conditions
    with torch.no_grad():
        for name in ("family", "source"):
            conditioner = cond.categorical[name]
            conditioner.proj.weight.zero_()
            conditioner.proj.bias.copy_(cond.null[CONDITIONS.index(name)])
    row = trainer.validate()
    assert row["loss_inference"] == pytest.approx(row["loss"], abs=1e-5)


def test_condition_dropout_is_per_sample_and_cfg_covers_every_condition():
    drop = condition_drop(20000, DropoutSettings(cfg=0.3, attribute=0.3), np.random.default_rng(0)).numpy()
    all_dropped = drop.all(axis=1)
    assert all_dropped.mean() == pytest.approx(0.3, abs=0.015)  # CFG drops everything at once
    clap, pitch = CONDITIONS.index("clap"), CONDITIONS.index("pitch")
    assert (drop[:, clap] == drop[:, pitch]).all()  # only CFG drops these, and together
    assert drop[:, pitch].mean() == pytest.approx(0.3, abs=0.015)
    for name in ("family", "source"):  # attribute dropout, independent of CFG and of each other
        assert drop[~all_dropped, CONDITIONS.index(name)].mean() == pytest.approx(0.3, abs=0.015)
    both = drop[~all_dropped][:, [CONDITIONS.index("family"), CONDITIONS.index("source")]].all(axis=1)
    assert both.mean() == pytest.approx(0.09, abs=0.01)
    assert 0 < drop[:, pitch].sum() < len(drop)  # varies within a batch, not per batch
    none = condition_drop(64, DropoutSettings(0.0, 0.0), np.random.default_rng(0))
    assert not none.any()


def test_batches_visit_every_note_once_per_epoch():
    rows = np.concatenate([batch_rows(step, 8, 20, seed=3) for step in range(5)])  # 2 epochs
    assert sorted(rows[:20]) == list(range(20)) and sorted(rows[20:40]) == list(range(20))
    assert not np.array_equal(rows[:20], rows[20:40])
    assert np.array_equal(batch_rows(3, 8, 20, seed=3), batch_rows(3, 8, 20, seed=3))


def test_lr_schedule_warms_up_then_anneals():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(100, 10, 100, min_ratio=0.1) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------- resume
@pytest.mark.slow  # two training subprocesses of 400 steps (~20 s)
def test_resume_after_a_kill_reaches_the_uninterrupted_weights(caches, tmp_path: Path):
    steps = dict(steps=400, checkpoint_every=10, valid_every=100, log_every=10)
    full = cli_args(caches, tmp_path / "full", **steps)
    subprocess.run(
        [sys.executable, "-m", "instrumentgen.train", *full],
        check=True,
        env=child_env(),
        capture_output=True,
        timeout=600,
    )

    killed = cli_args(caches, tmp_path / "killed", **steps)
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrumentgen.train", *killed],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed" / "ckpt").glob("*/last.pt"))
        if found and read_checkpoint(found[0])["step"] >= 30:
            last = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last is not None and proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = read_checkpoint(last)["step"]
    assert 30 <= killed_at < 400
    assert not (tmp_path / "killed" / "model.pt").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "instrumentgen.train", *killed],
        check=True,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert f"at step {read_checkpoint(last)['step']}" in resumed.stderr or "resuming" in resumed.stderr
    a, b = weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "killed" / "model.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for name in ("train.csv", "valid.csv"):  # no duplicated or missing rows after the resume
        full_rows = list(csv.reader(open(tmp_path / "full" / "results" / name)))
        resumed_rows = list(csv.reader(open(tmp_path / "killed" / "results" / name)))
        assert resumed_rows == full_rows
    summary = json.loads((tmp_path / "killed" / "results" / "summary.json").read_text())
    assert summary["resumed_from_step"] == killed_at


def test_changed_training_code_starts_a_fresh_run(caches, tmp_path: Path, monkeypatch):
    """A code change re-runs the rule; it must retrain, not hand back the finished old run's weights."""
    from instrumentgen.train import loop

    covered = loop.module_files("train/loop.py", package_dir=loop.PACKAGE_DIR)
    assert any(str(p).endswith("lm/magnet.py") for p in covered)
    first = Trainer(make_run(caches, tmp_path, steps=10)).run()
    monkeypatch.setattr(loop, "training_code_digest", lambda: "edited")
    second = Trainer(make_run(caches, tmp_path, steps=10)).run()
    assert second["fingerprint"] != first["fingerprint"] and second["resumed_from_step"] == 0
    monkeypatch.undo()
    again = Trainer(make_run(caches, tmp_path, steps=10)).run()  # same code as the first: its finished run
    assert again["fingerprint"] == first["fingerprint"] and again["resumed_from_step"] == 10


def test_a_changed_setting_starts_a_fresh_run_beside_the_old_checkpoint(caches, tmp_path: Path):
    Trainer(make_run(caches, tmp_path, steps=10)).run()
    Trainer(make_run(caches, tmp_path, steps=10, lr=5e-4)).run()
    runs = sorted((tmp_path / "ckpt").glob("*/last.pt"))
    assert len(runs) == 2  # keyed by fingerprint: nothing overwritten, nothing resumed by mistake
    Trainer(make_run(caches, tmp_path, steps=10, checkpoint_every=4, log_every=2)).run()
    assert len(list((tmp_path / "ckpt").glob("*/last.pt"))) == 2  # logging cadence is not a new run


# ------------------------------------------------------------------------------------------- DDP
@pytest.mark.slow  # torchrun with two processes, each case ~20 s
@pytest.mark.parametrize(
    ("variant", "quantiser"), [("baseline", "frozen"), ("magnet", "frozen"), ("random", "ema")]
)
def test_ddp_with_two_processes_under_torchrun_matches_one_process(
    caches, tmp_path: Path, variant: str, quantiser: str
):
    """Also the CLAP quantiser: fitted identically on every rank (and broadcast from rank 0), and with
    ``ema`` updated from statistics all-reduced over the ranks (its buffers are compared with the rest)."""
    lm = {**LM, "clap_quantiser": quantiser}
    one = cli_args(caches, tmp_path / "one", variant, lm, steps=12)
    two = cli_args(caches, tmp_path / "two", variant, lm, steps=12)
    subprocess.run(
        [sys.executable, "-m", "instrumentgen.train", *one],
        check=True,
        env=child_env(),
        capture_output=True,
        timeout=600,
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "instrumentgen.train",
            *two,
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "results" / "summary.json").read_text())
    assert summary["processes"] == 2
    a, b = weights(tmp_path / "one" / "model.pt"), weights(tmp_path / "two" / "model.pt")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    v1 = pd.read_csv(tmp_path / "one" / "results" / "valid.csv")
    v2 = pd.read_csv(tmp_path / "two" / "results" / "valid.csv")
    np.testing.assert_allclose(v2["loss"], v1["loss"], rtol=1e-4)


# ------------------------------------------------------------------------------------------- bad input
def test_unknown_variant_is_named(caches, tmp_path: Path):
    with pytest.raises(ValueError, match="'bogus'.*baseline, random, fixed, magnet"):
        build_run(parse_args(cli_args(caches, tmp_path, "bogus")))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--lm", "{dim: 3}", "--lm is not valid JSON"),
        ("--settings", "[1]", "--settings must be a JSON object"),
    ],
)
def test_bad_json_flags_are_named(caches, tmp_path: Path, flag: str, value: str, message: str):
    args = cli_args(caches, tmp_path, "baseline")
    args[args.index(flag) + 1] = value
    with pytest.raises(ValueError, match=message):
        build_run(parse_args(args))


def test_fixed_variant_without_reference_is_refused(caches, tmp_path: Path):
    args = cli_args(caches, tmp_path, "fixed")
    i = args.index("--train-reference")
    del args[i : i + 2]
    with pytest.raises(ValueError, match="--train-reference"):
        build_run(parse_args(args))


def test_unknown_setting_and_bad_values_are_named(caches, tmp_path: Path):
    with pytest.raises(ValueError, match="unknown train settings: stepz"):
        TrainSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="train.batch_size"):
        TrainSettings(batch_size=0)
    with pytest.raises(ValueError, match="train.grad_clip must be > 0, got 0"):
        TrainSettings(grad_clip=0)
    with pytest.raises(
        ValueError, match=r"checkpoint_every \(10\) must be a multiple of train.log_every \(3\)"
    ):
        TrainSettings(checkpoint_every=10, log_every=3)
    with pytest.raises(ValueError, match="train.betas"):
        TrainSettings(betas=(0.9,))
    with pytest.raises(ValueError, match="dim 30 is not divisible by n_heads 4"):
        Trainer(make_run(caches, tmp_path, lm={**LM, "dim": 30, "n_heads": 4}))


def test_empty_and_inconsistent_caches_are_named(caches, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(caches["train"]["codes"])
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    with pytest.raises(TrainingDataError, match="empty.parquet: not a feature cache"):
        load_split("train", tmp_path / "empty.parquet", caches["train"]["clap"], "baseline", None, 4, CARD)
    with pytest.raises(TrainingDataError, match="not row-aligned"):
        load_split("train", caches["train"]["codes"], caches["valid"]["clap"], "baseline", None, 4, CARD)
    with pytest.raises(TrainingDataError, match=r"outside the codebook \[0, 16\)"):
        load_split("train", caches["train"]["codes"], caches["train"]["clap"], "baseline", None, 4, 16)
    with pytest.raises(TrainingDataError, match=r"expected \[8, T\]"):
        load_split("train", caches["train"]["codes"], caches["train"]["clap"], "baseline", None, 8, CARD)
    bad = table.set_column(
        table.schema.get_field_index("pitch"),
        "pitch",
        pa.array(np.full(table.num_rows, 12, dtype=np.int64)),
    )
    pq.write_table(bad, tmp_path / "pitch.parquet")
    with pytest.raises(TrainingDataError, match="pitch 12 is outside MIDI 21..108"):
        load_split("train", tmp_path / "pitch.parquet", caches["train"]["clap"], "baseline", None, 4, CARD)


def test_codes_longer_than_the_model_accepts_are_refused(caches, tmp_path: Path):
    with pytest.raises(ValueError, match="12 frames, more than lm.max_frames = 8"):
        Trainer(make_run(caches, tmp_path, lm={**LM, "max_frames": 8}))


def test_loading_a_model_file_of_another_size_is_refused(caches, tmp_path: Path):
    Trainer(make_run(caches, tmp_path, steps=10)).run()
    with pytest.raises(CheckpointError, match=r"dim: 32 != 64"):
        load_model(
            tmp_path / "model.pt", expected=Trainer(make_run(caches, tmp_path, lm={**LM, "dim": 64})).config
        )


def test_each_objective_gets_the_shared_settings_with_its_own_overrides():
    train = {"steps": 1000, "lr": 0.003, "batch_size": 8}
    train["by_objective"] = {"magnet": {"steps": 1300, "lr": 0.002}}
    ar, magnet = settings_for_objective(train, "ar"), settings_for_objective(train, "magnet")
    assert ar == {"steps": 1000, "lr": 0.003, "batch_size": 8}  # no by_objective table: AR runs unchanged
    assert magnet == {"steps": 1300, "lr": 0.002, "batch_size": 8}
    assert settings_for_objective({"steps": 5}, "magnet") == {"steps": 5}
    assert TrainSettings.from_dict(magnet).steps == 1300


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"diffusion": {"steps": 3}}, "train.by_objective.diffusion: lm objective 'diffusion' is unknown"),
        ({"magnet": {"stepz": 3}}, r"train.by_objective.magnet.stepz is not a per-objective"),
        ({"magnet": {"processes": 2}}, r"train.by_objective.magnet.processes is not a per-objective"),
        ({"ar": {"threads": 2}}, r"train.by_objective.ar.threads is not a per-objective"),
        ({"magnet": {"steps": 0}}, "train.steps must be an int >= 1"),
        ({"magnet": 1300}, "train.by_objective.magnet must be a mapping"),
    ],
)
def test_bad_per_objective_settings_are_named(table: dict, message: str):
    with pytest.raises(ValueError, match=message):
        settings_for_objective({"steps": 10, "by_objective": table}, "ar")


@pytest.mark.parametrize(
    ("precision", "device", "native_cpu", "bf16"),
    [
        ("auto", "cuda", False, True),
        ("auto", "cpu", True, False),  # the paper profile's CPU runs (and ci) stay fp32
        ("native", "cuda", False, True),
        ("native", "cpu", True, True),  # tiny on a CPU with AVX512-BF16 / AMX
        ("native", "cpu", False, False),  # ... and on one that would emulate bf16
        ("bf16", "cpu", False, True),
        ("fp32", "cuda", True, False),
    ],
)
def test_precision_resolves_per_device(precision: str, device: str, native_cpu: bool, bf16: bool):
    assert uses_bf16(precision, device, native_cpu=native_cpu) is bf16


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path):
    def cpuinfo(flags: str) -> Path:
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
        return path

    assert cpu_has_native_bf16(cpuinfo("avx512f avx512_bf16 avx512_vnni"))
    assert cpu_has_native_bf16(cpuinfo("amx_tile amx_bf16"))
    assert not cpu_has_native_bf16(cpuinfo("avx512f avx512bw avx512vl"))  # bf16 emulated: slower than fp32
    assert not cpu_has_native_bf16(tmp_path / "missing")
    with pytest.raises(ValueError, match="precision must be one of auto, native, bf16, fp32, got 'fp16'"):
        TrainSettings(precision="fp16")


def test_native_precision_trains_under_bf16_autocast_on_such_a_cpu(caches, tmp_path: Path, monkeypatch):
    """The trainer resolves ``native`` through the CPU's flags (stubbed both ways here) and trains under
    bf16 autocast where they have it; a step's loss is close to the fp32 step's."""
    losses = {}
    for native in (True, False):
        monkeypatch.setattr("instrumentgen.train.settings.cpu_has_native_bf16", lambda native=native: native)
        trainer = Trainer(make_run(caches, tmp_path / str(native), steps=2, precision="native"))
        assert trainer.bf16 is native
        trainer.build()
        out, _ = trainer.train_step()
        losses[native] = out.loss.item()
    assert losses[True] == pytest.approx(losses[False], rel=2e-2)
