"""Where jobs run: the GPU limit of a local run (counted GPUs, and a real Snakemake run that honours it)
and the checks before the Slurm executor submits (sinfo's answer, GPUs and CPUs against the rules)."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from instrumentgen.cluster import (
    ClusterError,
    check_slurm,
    check_slurm_run,
    count_gpus,
    local_gpu_limit,
    node_gpus,
    slurm_minutes,
)
from instrumentgen.config import REPO_ROOT
from instrumentgen.workspace import OFFLINE_ENV, make_workspace

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def fake_run(stdout: str = "", returncode: int = 0, stderr: str = "", raises: Exception | None = None):
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if raises:
            raise raises
        return SimpleNamespace(stdout=stdout, stderr=stderr, returncode=returncode)

    run.calls = calls
    return run


def which_all(name: str) -> str:
    return f"/usr/bin/{name}"


@pytest.mark.parametrize(("visible", "expected"), [("0,1", 2), ("3", 1), ("", 0), ("-1", 0), ("GPU-ab12", 1)])
def test_cuda_visible_devices_decides_the_gpu_count(visible, expected):
    run = fake_run("GPU 0: A\nGPU 1: B\nGPU 2: C\n")
    assert count_gpus({"CUDA_VISIBLE_DEVICES": visible}, run, which_all) == expected
    assert run.calls == []  # nvidia-smi is not asked


def test_nvidia_smi_counts_the_gpus_and_its_absence_or_failure_is_none():
    smi = ("GPU 0: NVIDIA H100 (UUID: GPU-1)\n  MIG 1g.10gb Device 0: (UUID: MIG-1)\n"
           "GPU 1: NVIDIA H100 (UUID: GPU-2)\n")
    assert count_gpus({}, fake_run(smi), which_all) == 2
    assert count_gpus({}, fake_run(smi), lambda name: None) == 0
    assert count_gpus({}, fake_run("", returncode=9), which_all) == 0
    assert count_gpus({}, fake_run(raises=subprocess.TimeoutExpired("nvidia-smi", 20)), which_all) == 0
    assert [local_gpu_limit(n) for n in (0, 1, 4)] == [1, 1, 4]


def run_toy(tmp_path: Path, env: dict[str, str], *args: str) -> list[tuple[float, float]]:
    """Four one-second jobs that each hold gpu=1, under a Snakefile that calls the project's limit;
    returns their (start, end) times."""
    tmp_path.mkdir()
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        from instrumentgen.cluster import limit_local_gpu_jobs
        limit_local_gpu_jobs(workflow)

        rule all:
            input: expand("done/{i}", i=range(4))

        rule gpu_job:
            output: "done/{i}"
            resources: gpu=1
            shell: "python -c 'import time; s = time.time(); time.sleep(1); print(s, time.time())' > {output}"
    """))
    proc = subprocess.run([SNAKEMAKE, "--cores", "4", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **OFFLINE_ENV, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [tuple(map(float, (tmp_path / f"done/{i}").read_text().split())) for i in range(4)]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


@pytest.mark.slow  # three Snakemake runs (~15 s)
def test_a_bare_local_run_holds_one_gpu_job_per_gpu(tmp_path: Path):
    assert most_at_once(run_toy(tmp_path / "none", {"CUDA_VISIBLE_DEVICES": ""})) == 1
    assert most_at_once(run_toy(tmp_path / "two", {"CUDA_VISIBLE_DEVICES": "0,1"})) == 2
    # the user's own limit wins
    assert most_at_once(run_toy(tmp_path / "own", {"CUDA_VISIBLE_DEVICES": ""}, "--resources", "gpu=4")) == 4


@pytest.mark.slow  # two dry runs of the whole DAG (~5 s)
def test_the_workflows_dry_run_shows_the_gpu_limit():
    for visible, limit in (("", 1), ("0,1,2", 3)):
        cmd = [SNAKEMAKE, "--cores", "2", "-n", "--configfile", "workflow/profiles/ci/params.yaml"]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, **OFFLINE_ENV, "CUDA_VISIBLE_DEVICES": visible})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"GPU jobs at most {limit} at a time" in proc.stderr


@pytest.mark.parametrize(("gres", "gpus"), [("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu:1,nic:2", 1),
                                            ("(null)", 0), ("nic:2", 0), ("gpu", 1)])
def test_node_gres_gives_its_gpus(gres, gpus):
    assert node_gpus(gres) == gpus


def test_slurm_time_limits_in_minutes():
    cases = {"infinite": math.inf, "UNLIMITED": math.inf, "30": 30, "30:30": 30.5, "2:00:00": 120,
             "1-00:00:00": 1440, "2-12": 3600, "1-01:30": 1530}
    assert {text: slurm_minutes(text) for text in cases} == cases


def test_check_slurm_reads_the_nodes_of_the_partition():
    run = fake_run("2 gpu:2 8000 1-00:00:00\n16+ (null) 64000+ 1-00:00:00\n")
    nodes = check_slurm({"train_variant": {"gpu": 2, "threads": 2, "mem_mb": 4000, "runtime": 600}}, "gpu",
                        run, which_all)
    offered = [(n.cpus, n.gpus, n.mem_mb, n.minutes) for n in nodes]
    assert offered == [(2, 2, 8000, 1440), (16, 0, 64000, 1440)]
    assert run.calls == [["sinfo", "--noheader", "--format=%c %G %m %l", "--partition", "gpu"]]


def test_check_slurm_names_gpu_rules_a_cpu_cluster_cannot_run():
    with pytest.raises(ClusterError, match=r"train_variant \(gpu=1\).*no node offers a 'gpu' GRES.*"
                                           r"--set-resources train_variant:gpu=0"):
        check_slurm({"train_variant": {"gpu": 1}, "resample": {"gpu": 0}}, None, fake_run("8 (null)\n"),
                    which_all)
    with pytest.raises(ClusterError, match=r"train_variant \(gpu=4\).*at most 2 GPUs"):
        check_slurm({"train_variant": {"gpu": 4}}, None, fake_run("8 gpu:2\n"), which_all)


def test_check_slurm_names_rules_with_more_threads_than_a_node():
    message = r"resample \(16 threads\).*largest node has \(4\).*max-threads: 4"
    with pytest.raises(ClusterError, match=message):
        check_slurm({"resample": {"threads": 16}, "prune": {"threads": 1}}, None,
                    fake_run("4 (null)\n2 (null)\n"), which_all)


def test_check_slurm_names_memory_and_time_that_no_node_gives():
    nodes = fake_run("32 gpu:4 48000 1-00:00:00\n")
    message = r"train_variant \(mem_mb=64000\).*\(48000 MB\).*cluster.<job>.mem_mb"
    with pytest.raises(ClusterError, match=message):
        check_slurm({"train_variant": {"mem_mb": 64000}}, None, nodes, which_all)
    with pytest.raises(ClusterError, match=r"train_variant \(runtime=2880 min\).*\(1440 min\).*resumes"):
        check_slurm({"train_variant": {"runtime": 2880}}, None, nodes, which_all)


def test_check_slurm_wants_one_node_with_everything_a_rule_asks_for():
    nodes = fake_run("64 (null) 256000 infinite\n8 gpu:4 64000 infinite\n")  # big CPU nodes, small GPU ones
    check_slurm({"encode": {"gpu": 1, "threads": 8}}, None, nodes, which_all)
    with pytest.raises(ClusterError, match=r"train_variant asks for \{'gpu': 1, 'threads': 16\} on one node"):
        check_slurm({"train_variant": {"gpu": 1, "threads": 16}}, None, nodes, which_all)


def test_check_slurm_says_what_to_do_when_slurm_is_missing_or_silent():
    with pytest.raises(ClusterError, match="sinfo not found.*slurm-client"):
        check_slurm({}, None, fake_run(), lambda name: None)
    with pytest.raises(ClusterError, match="Slurm does not answer: sinfo failed \\(slurm_load_partitions: "
                                           "Unable to contact slurm controller\\).*SLURM_CONF"):
        check_slurm({}, None, fake_run(stderr="slurm_load_partitions: Unable to contact slurm controller",
                                       returncode=1), which_all)
    with pytest.raises(ClusterError, match="sinfo took over 30 s"):
        check_slurm({}, None, fake_run(raises=subprocess.TimeoutExpired("sinfo", 30)), which_all)
    with pytest.raises(ClusterError, match="no nodes in partition 'gpu'"):
        check_slurm({}, "gpu", fake_run(""), which_all)


@pytest.mark.slow  # a Snakemake dry run of the paper DAG (~2 s)
def test_the_slurm_profile_plans_the_paper_run_on_the_slurm_executor():
    """``configfile: ../paper/params.yaml`` in the profile resolves to the paper parameters (NSynth is
    downloaded), the executor plugin is installed, and a cluster run sets no local GPU limit."""
    proc = subprocess.run([SNAKEMAKE, "--profile", "workflow/profiles/slurm", "-n", "data"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **OFFLINE_ENV})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert re.search(r"^nsynth\s+3$", out, re.M) and "data/paper/resampled" in out
    assert "GPU jobs at most" not in out


@pytest.mark.slow  # waits for sinfo to give up (~35 s)
def test_a_slurm_run_stops_before_submitting_when_slurm_does_not_answer(tmp_path: Path):
    """A cluster whose controller does not answer: the run stops at its start, saying so, and submits
    nothing (no Slurm job log, no output)."""
    assert shutil.which("sinfo"), "this test needs Slurm's client commands: make test installs slurm-wlm"
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=silent\nSlurmctldHost=localhost\nSlurmctldPort=1\nAuthType=auth/munge\n"
                    "NodeName=localhost CPUs=1\nPartitionName=main Nodes=localhost\n")
    ws = make_workspace(tmp_path / "ws")
    cmd = [SNAKEMAKE, "data/ci/manifest/train.parquet", "--profile", "workflow/profiles/slurm",
           "--configfile", "workflow/profiles/ci/params.yaml"]
    proc = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **OFFLINE_ENV, "SLURM_CONF": str(conf)})
    assert proc.returncode != 0
    message = "Slurm does not answer: sinfo failed (slurm_load_partitions: Unable to contact slurm controller"
    assert message in proc.stdout + proc.stderr
    assert not (ws / ".snakemake" / "slurm_logs").exists() and not (ws / "data").exists()


@pytest.mark.slow  # a Snakemake run per case (~2 s)
@pytest.mark.parametrize(
    ("sinfo", "args", "message"),
    [
        ("2 (null)", ["--max-threads", "2"],
         "train_variant (gpu=1) ask for GPUs, but no node offers a 'gpu' GRES"),
        ("2 gpu:2", [], "synthesize (16 threads) ask for more CPUs than the largest node has (2)"),
    ],
    ids=["cpu-only-cluster", "small-nodes"],
)
def test_a_slurm_run_checks_the_rules_against_the_cluster_before_submitting(tmp_path: Path, sinfo, args,
                                                                            message):
    """The checks run on the workflow's own rules (the ci parameters: training holds gpu=1, the data
    rules 16 threads), with what sinfo says about the nodes (a stand-in sinfo on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text(f"#!/bin/sh\necho '{sinfo}'\n")
    (bin_dir / "sinfo").chmod(0o755)
    ws = make_workspace(tmp_path / "ws")
    cmd = [SNAKEMAKE, "data/ci/manifest/train.parquet", "--profile", "workflow/profiles/slurm",
           "--configfile", "workflow/profiles/ci/params.yaml", *args]
    env = {**os.environ, **OFFLINE_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    assert not (ws / "data").exists()


def fake_workflow(executor: str | None, max_threads: int | None = None) -> SimpleNamespace:
    """Rules as Snakemake holds them: resources whose ``value`` is a number, or computed per job."""
    def rule(name, **resources):
        values = {key: SimpleNamespace(value=value) for key, value in resources.items()}
        return SimpleNamespace(name=name, resources=values)

    rules = [rule("train_variant", gpu=2, _cores=16, mem_mb=4000, slurm_partition="gpu"),
             rule("prune", gpu=0, _cores=1, slurm_partition="gpu"),
             rule("generate_instruments", gpu=SimpleNamespace(), _cores=lambda wildcards: 4)]
    plugin = None if executor is None else SimpleNamespace(name=executor)
    return SimpleNamespace(rules=rules, executor_plugin=plugin,
                           resource_settings=SimpleNamespace(max_threads=max_threads))


def test_check_slurm_run_reads_the_rules_and_only_for_the_slurm_executor():
    for executor in (None, "local", "slurm-jobstep"):
        run = fake_run("1 (null)\n")
        check_slurm_run(fake_workflow(executor), run, which_all)  # no check: nothing raised
        assert run.calls == []
    with pytest.raises(ClusterError, match=r"^train_variant \(gpu=2\) ask"):
        check_slurm_run(fake_workflow("slurm"), fake_run("64 gpu:1\n"), which_all)
    with pytest.raises(ClusterError, match=r"^train_variant \(16 threads\) ask"):
        check_slurm_run(fake_workflow("slurm"), fake_run("8 gpu:2\n"), which_all)
    run = fake_run("8 gpu:2 4000\n")
    check_slurm_run(fake_workflow("slurm", max_threads=8), run, which_all)
    assert run.calls[0][-2:] == ["--partition", "gpu"]  # the partition the rules name
    with pytest.raises(ClusterError, match=r"^train_variant \(mem_mb=4000\) ask"):
        check_slurm_run(fake_workflow("slurm", max_threads=8), fake_run("8 gpu:2 2000\n"), which_all)
