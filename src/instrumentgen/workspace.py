"""A throwaway copy of the workflow in another folder, for end-to-end tests and benchmarks.

The copy has its own ``params.yaml``, ``workflow/``, ``Snakefile`` and ``src/`` (so a test can
edit a parameter or touch a module without touching the repository; the code that runs is still
the installed package); all outputs (``data/``, ``results/``, ``logs/``, ``.snakemake/``) land in
the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from instrumentgen.config import REPO_ROOT

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def make_workspace(dest: Path, repo: Path = REPO_ROOT) -> Path:
    """Copy the workflow definition of ``repo`` into ``dest`` (created) and return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "params.yaml", "dvc.yaml", ".dvcignore"):
        shutil.copy2(repo / name, dest / name)
    shutil.copytree(repo / "workflow", dest / "workflow", symlinks=True)
    shutil.copytree(repo / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def snakemake(workdir: Path, *args: str, profile: str | None = None, check: bool = True,
              timeout: float = 1800, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this interpreter's Snakemake in ``workdir`` (offline), capturing stdout and stderr; ``env``:
    the environment to start from (default: this process's)."""
    cmd = [str(Path(sys.executable).with_name("snakemake"))]
    if profile is not None:
        cmd += ["--profile", f"workflow/profiles/{profile}"]
    cmd += list(args)
    env = {**(os.environ if env is None else env), **OFFLINE_ENV}
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}) in {workdir}:\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
