"""What the Snakemake rules get from the validated parameters: the checks the schema cannot express, and
the settings derived from the parameters (model sizes, training and decoding settings as JSON, threads,
GPU tokens, the training launcher, the embedders of the evaluation).

``workflow/rules/common.smk`` binds these to names the rules use; every value reaches a rule through its
``params:``, ``threads:`` or ``resources:``, so Snakemake reruns what a change affects and nothing else.
Functions take the params that :func:`instrumentgen.config.validate_params` returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from instrumentgen.clap.base import LAION_EMBEDDING_DIM
from instrumentgen.config import ParamsError
from instrumentgen.lm.objective import OBJECTIVES, get_objective
from instrumentgen.train.settings import settings_for_objective
from instrumentgen.variants import get_variant

# What each split is needed for: params data.splits must name them all.
REQUIRED_SPLITS = {
    "train": "models and references learn from it",
    "valid": "the language model's validation loss",
    "test": "S2I generation queries its instruments",
}
TASKS = ["s2i", "t2i"]  # generation from an audio prompt (sample-to-instrument) and from a text prompt
ALL_CORES = 16
"""Threads of a job that should use every core: the jobs whose threads setting is 0 ("all cores") and the
CPU-parallel data jobs. Snakemake gives a local job at most ``--cores`` threads, so this is all cores of
any machine with up to 16 (the paper's GPU machines have 16); under the Slurm executor it is the job's
``--cpus-per-task`` (``instrumentgen.cluster.check_slurm_run`` checks that a node has that many, and
``--max-threads`` lowers it). Not ``os.cpu_count()``: that would be the submitting machine's, and would
make a job's threads, and so its plan, depend on where Snakemake started."""
VGGISH_UNAVAILABLE = "n/a offline"
"""What Tables 2-3 say in the FAD-VGGish column without VGGish: a number from random weights would mean
nothing, so the offline profiles say so."""


def check_workflow_params(params: Mapping[str, Any]) -> None:
    """What the workflow needs of the parameters beyond the schema: every split of
    :data:`REQUIRED_SPLITS`, a T2I grid whose pitch range is not empty, and training settings that are
    valid for every variant's objective (a bad ``train.by_objective`` fails before any job, not when
    its training job starts).

    Raises:
        ParamsError: naming the key, its value and why it is needed.
    """
    splits = params["data"]["splits"]
    for split, need in REQUIRED_SPLITS.items():
        if split not in splits:
            raise ParamsError(f"data.splits = {splits} must include {split!r} ({need})")
    grid = params["generate"]["grid"]
    if grid["pitch_min"] > grid["pitch_max"]:
        raise ParamsError(f"generate.grid.pitch_min {grid['pitch_min']} > pitch_max {grid['pitch_max']}")
    for variant in params["variants"]:
        try:
            train_settings(params, variant)
        except ValueError as err:
            raise ParamsError(f"invalid training settings for variant {variant!r}: {err}") from None


def prepare_environment(params: Mapping[str, Any], environ: MutableMapping[str, str], python: str) -> None:
    """Set up ``environ`` (the process environment that jobs inherit) for a run:

    - the folder of ``python`` (the interpreter running Snakemake, the project's .venv) first on PATH, so
      that the jobs' ``python -m instrumentgen...`` use it even when the venv is not activated;
    - offline profiles (``data.source`` not nsynth): the model-hub offline variables, which laion_clap
      and transformers would otherwise ignore and hang on (values already set are kept).
    """
    environ["PATH"] = f"{Path(python).parent}{os.pathsep}{environ.get('PATH', '')}"
    if params["data"]["source"] != "nsynth":
        environ.setdefault("HF_HUB_OFFLINE", "1")
        environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def job_threads(setting: int) -> int:
    """Threads of a job from a threads setting: the setting, or :data:`ALL_CORES` for 0 (all cores)."""
    return setting or ALL_CORES


# ---------------------------------------------------------------- data phase
def per_split(values: Mapping[str, Any], splits: list[str]) -> str:
    """``train=..,valid=..,test=..``: a per-split setting as the data CLIs take it, in the order of
    ``splits``."""
    return ",".join(f"{split}={values[split]}" for split in splits)


def synthetic_cell_dropout(params: Mapping[str, Any]) -> Any:
    """``--cell-dropout`` of the synthesizer: one probability, or ``train=..,valid=..,test=..``."""
    dropout = params["synthetic"]["cell_dropout"]
    return per_split(dropout, params["data"]["splits"]) if isinstance(dropout, Mapping) else dropout


# ---------------------------------------------------------------- features phase
def reference_pitch_json(params: Mapping[str, Any]) -> str:
    """``--pitch-overrides`` of ``features.reference``: params features.reference.pitch as JSON."""
    return json.dumps(params["features"]["reference"]["pitch"])


def gpu_encoders(params: Mapping[str, Any]) -> int:
    """GPU tokens of an encoder job: 1 for the pretrained encoders (DAC, LAION-CLAP; the paper), 0 for
    the offline ones, which run on the CPU."""
    return int(params["codec"]["kind"] == "dac" or params["clap"]["kind"] == "laion")


def unused_encoder_code(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Modules (relative to src/instrumentgen) of the encoder kinds the profile does not use. They are
    imported lazily, only for their kind, and left out of the rules' code inputs, so that editing the
    offline models never re-encodes NSynth, and vice versa."""
    codec = ("codec/fitted.py",) if params["codec"]["kind"] == "dac" else ("codec/dac_codec.py",)
    clap = ("clap/small.py",) if params["clap"]["kind"] == "laion" else ("clap/laion.py",)
    return codec + clap


# ---------------------------------------------------------------- train phase
def clap_dim(params: Mapping[str, Any]) -> int:
    """Width of the CLAP embeddings the LM is conditioned on: the small CLAP's ``dim`` or LAION-CLAP's."""
    return params["clap"]["small"]["dim"] if params["clap"]["kind"] == "small" else LAION_EMBEDDING_DIM


def lm_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The LM's size: params ``lm`` plus what the encoders fix (codebooks, CLAP width)."""
    return {
        **params["lm"],
        "n_codebooks": params["codec"]["n_codebooks"],
        "codebook_size": params["codec"]["codebook_size"],
        "clap_dim": clap_dim(params),
    }


def lm_json(params: Mapping[str, Any]) -> str:
    """:func:`lm_settings` as the ``--lm`` JSON of ``instrumentgen.train`` (keys sorted)."""
    return json.dumps(lm_settings(params), sort_keys=True)


def train_settings(params: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """A variant's training settings: the shared ones with its objective's overrides
    (``train.by_objective``); a ValueError names a bad setting or variant."""
    return settings_for_objective(params["train"], get_variant(variant).objective)


def train_json(params: Mapping[str, Any], variant: str) -> str:
    """:func:`train_settings` as the ``--settings`` JSON of ``instrumentgen.train`` (keys sorted)."""
    return json.dumps(train_settings(params, variant), sort_keys=True)


def train_launcher(processes: int) -> str:
    """What runs ``-m instrumentgen.train``: python, or torchrun with one process per GPU when
    ``processes`` > 1 (DistributedDataParallel)."""
    if processes == 1:
        return "python"
    return f"python -m torch.distributed.run --standalone --nproc_per_node {processes}"


def gpu_training(params: Mapping[str, Any]) -> int:
    """GPU tokens of a training job: one per process. How many a run has is the profile's
    ``resources: gpu`` (paper: 1; the offline profiles train on the CPU and give 2, so that two variants
    train side by side)."""
    return params["train"]["processes"]


# ---------------------------------------------------------------- generate phase
def gpu_generation(params: Mapping[str, Any]) -> int:
    """GPU tokens of a generation job (the LM and the codec decoder): 1 with DAC (the paper), 0 offline."""
    return int(params["codec"]["kind"] == "dac")


def t2i_grid(params: Mapping[str, Any]) -> dict[str, list[int]]:
    """The T2I cells (params generate.grid): every ``pitch_step``-th pitch from ``pitch_min`` to
    ``pitch_max`` (inclusive) by the velocities, sorted."""
    grid = params["generate"]["grid"]
    return {
        "pitches": list(range(grid["pitch_min"], grid["pitch_max"] + 1, grid["pitch_step"])),
        "velocities": sorted(grid["velocities"]),
    }


def t2i_grid_json(params: Mapping[str, Any]) -> str:
    """:func:`t2i_grid` as the ``--grid`` JSON of ``instrumentgen.generate``."""
    return json.dumps(t2i_grid(params))


def decoding_json(params: Mapping[str, Any], variant: str) -> str:
    """The decoding settings of ``variant``: only its objective's decoder section of params ``generate``
    (AR ``sampling`` or ``magnet``), so that changing one decoder's settings does not regenerate the
    other decoder's variants."""
    section = get_objective(get_variant(variant).objective).decoding_section
    return json.dumps({section: params["generate"][section]}, sort_keys=True)


def anchor_decoding_json(params: Mapping[str, Any]) -> str:
    """The decoding settings of the listening test's anchor, which decodes with its architecture's
    objective: every decoder's section."""
    sections = {o.decoding_section for o in OBJECTIVES.values()}
    return json.dumps({s: params["generate"][s] for s in sorted(sections)}, sort_keys=True)


# ---------------------------------------------------------------- evaluate and listening phases
def embedders(params: Mapping[str, Any]) -> list[str]:
    """Embedders of the evaluation: CLAP always, VGGish where its weights exist (evaluate.vggish.enabled,
    the paper profile)."""
    return ["clap", "vggish"] if params["evaluate"]["vggish"]["enabled"] else ["clap"]


def listening_result_files(folder: str | None) -> dict[str, str]:
    """webMUSHRA's result files (``mushra``, ``lss``) that ``folder`` (params listening.results) holds, so
    that new ratings rerun Table 4; none without the folder."""
    if not folder:
        return {}
    files = {name: f"{folder}/{name}.csv" for name in ("mushra", "lss")}
    return {name: path for name, path in files.items() if os.path.isfile(path)}
