"""A real one-node Slurm cluster on 127.0.0.1 for the tests: Debian's ``munge`` and ``slurm-wlm``
daemons (``munged``, ``slurmctld``, ``slurmd``), started in a temporary folder and stopped when the
``with`` block ends, also on failure.

- No ``slurmdbd``: the Snakemake Slurm executor works without accounting when it queries job states
  with ``squeue`` (``MinJobAge`` keeps finished jobs visible to it for an hour) and is told not to
  look for an account (``slurm_no_account``). Every finished job is still recorded, by
  ``JobCompType=jobcomp/filetxt``, in :attr:`SlurmCluster.jobcomp` (one ``JobId=... Name=...
  JobState=...`` line per job): the tests read what ran through Slurm there.
- The node has the machine's CPUs and ``gpus`` GPUs as GRES (``gpu``) backed by plain files: Slurm
  schedules and accounts GPU requests (``--gpus``/``--gres=gpu:N``) as on a GPU cluster, and the jobs
  run on the CPU.

Clients (``sbatch``, ``squeue``, ``sinfo``, and Snakemake's executor) find the cluster through
``SLURM_CONF``, which :meth:`SlurmCluster.env` sets. Inside a job, Snakemake's jobstep executor starts
the rule with ``srun`` in an environment stripped of every ``SLURM_*`` variable but the job's identity
(snakemake-executor-plugin-slurm-jobstep 0.6), ``SLURM_CONF`` included: a real cluster's ``srun`` finds
``/etc/slurm/slurm.conf`` (or its controller, configless), this one would not. So the jobs see a
``srun`` first on ``PATH`` that sets ``SLURM_CONF`` and runs the real one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DAEMONS = {"munged": "munge", "slurmctld": "slurm-wlm", "slurmd": "slurm-wlm"}
MUNGE_KEY = Path("/etc/munge/munge.key")


class SlurmUnavailable(RuntimeError):
    """Slurm or munge is not installed, or the cluster did not come up (the message says which)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    jobcomp: Path

    def env(self) -> dict[str, str]:
        path = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def run(self, *cmd: str) -> str:
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=30)
        if proc.returncode:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def job_gpus(self, job: int) -> int:
        """GPUs Slurm allocated to ``job`` (finished jobs stay known for ``MinJobAge``)."""
        found = re.search(r"gres[:/]gpu[:=](\d+)", self.run("scontrol", "show", "job", "-d", str(job)))
        return int(found.group(1)) if found else 0

    def completed_jobs(self) -> list[dict[str, str]]:
        """The jobs Slurm recorded as finished, each as its ``key=value`` fields."""
        if not self.jobcomp.is_file():
            return []
        return [dict(f.split("=", 1) for f in line.split() if "=" in f)
                for line in self.jobcomp.read_text().splitlines() if line.strip()]


def check_installed() -> None:
    missing = sorted({pkg for cmd, pkg in DAEMONS.items() if shutil.which(cmd) is None})
    if missing or not MUNGE_KEY.is_file():
        raise SlurmUnavailable(
            f"the Slurm tests need the Debian packages {', '.join(missing or ['munge'])} (and "
            f"{MUNGE_KEY}): `make test` installs slurm-wlm and munge as root, or `sudo apt-get install "
            "slurm-wlm munge`")


def _config(root: Path, munge: Path, host: str, cpus: int, gpus: int, memory_mb: int) -> str:
    return f"""ClusterName=instrumentgen-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.log
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _stop(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def slurm_cluster(root: Path, cpus: int | None = None, gpus: int = 2, memory_mb: int = 8000
                  ) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd for a one-node cluster under ``root``; stop them on exit."""
    check_installed()
    if os.geteuid() != 0:
        raise SlurmUnavailable("the Slurm tests start slurmd, which must run as root")
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # munged runs as the munge user: its folder must be reachable by it, so not under pytest's private
    # temporary folders
    munge = Path(tempfile.mkdtemp(prefix="instrumentgen-munge-"))
    shutil.copyfile(MUNGE_KEY, munge / "munge.key")
    shutil.chown(munge, "munge", "munge")
    shutil.chown(munge / "munge.key", "munge", "munge")
    os.chmod(munge, 0o755)  # munged wants its socket's folder reachable by all
    os.chmod(munge / "munge.key", 0o400)
    gpu_files = [root / f"gpu{i}" for i in range(gpus)]
    for f in gpu_files:
        f.touch()
    conf = root / "slurm.conf"
    conf.write_text(_config(root, munge, host, cpus, gpus, memory_mb))
    gres = f"NodeName={host} Name=gpu File={root}/gpu[0-{gpus - 1}]\n" if gpus else ""
    (root / "gres.conf").write_text(gres)
    cluster = SlurmCluster(root, conf, root / "jobcomp.log")
    (root / "bin").mkdir(exist_ok=True)
    srun = root / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    pid_files = [munge / "munged.pid", root / "slurmctld.pid", root / "slurmd.pid"]
    try:
        subprocess.run(["runuser", "-u", "munge", "--", "munged", f"--socket={munge}/munge.socket",
                        f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
                        f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"], check=True)
        subprocess.run(["slurmctld", "-f", str(conf), "-i"], check=True, env=cluster.env())
        subprocess.run(["slurmd", "-f", str(conf)], check=True, env=cluster.env())
        deadline = time.monotonic() + 60
        while True:
            try:
                if cluster.run("sinfo", "-h", "-o", "%t").strip() == "idle":
                    break
            except SlurmUnavailable:
                pass
            if time.monotonic() > deadline:
                ctld_log = root / "slurmctld.log"
                log = ctld_log.read_text()[-2000:] if ctld_log.exists() else ""
                raise SlurmUnavailable(f"the test cluster's node did not become idle in 60 s:\n{log}")
            time.sleep(0.5)
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["scancel", "--full", "--user", "root"], env=cluster.env(), timeout=10)
        for pid_file in reversed(pid_files):
            _stop(pid_file)
        shutil.rmtree(munge, ignore_errors=True)
