# Shared set-up: parameters (validated, defaults filled), output roots, helpers.
import os
import sys
from pathlib import Path

from instrumentgen.config import ParamsError, validate_params


configfile: "params.yaml"


try:
    P = validate_params(config)
except ParamsError as err:
    raise WorkflowError(str(err)) from None

PROFILE = P["profile"]
DATA = f"data/{PROFILE}"  # outputs of different profiles never overwrite each other
RESULTS = f"results/{PROFILE}"
LOGS = f"logs/{PROFILE}"
SPLITS = P["data"]["splits"]
ENV = "../envs/instrumentgen.yaml"  # conda equivalent of `make setup`

envvars:
    "PATH",


# Jobs run `python -m instrumentgen...`: put the interpreter running Snakemake (the project's
# .venv) first on PATH, so that its `python` is used even when the venv is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


wildcard_constraints:
    split="|".join(SPLITS),


def code(*paths):
    """Source files a rule runs (modules or whole sub-packages of src/instrumentgen), listed as
    inputs so that code changes re-trigger the rule."""
    files = []
    for p in paths:
        full = Path("src/instrumentgen") / p
        files += sorted(str(f) for f in full.glob("*.py")) if full.is_dir() else [str(full)]
    return files


def raw_split(wildcards):
    """Folder of an NSynth-format split: downloaded (paper) or synthesized (offline profiles)."""
    source = "nsynth" if P["data"]["source"] == "nsynth" else "synthetic"
    return f"{DATA}/{source}/nsynth-{wildcards.split}"


def parent_of_output(wildcards, output):
    """Folder holding a rule's first output."""
    return os.path.dirname(output[0])
