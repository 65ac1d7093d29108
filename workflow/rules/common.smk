# Shared set-up: parameters (validated, defaults filled), the settings the rules get from them
# (instrumentgen.workflow_settings), where files go (instrumentgen.artifacts), and the glue that hands
# wildcards and inputs to instrumentgen.workflow_args. Nothing here decides anything: that is tested Python.
import glob
import os
import sys
from pathlib import Path

from instrumentgen import workflow_args as args
from instrumentgen import workflow_settings as settings
from instrumentgen.artifacts import Paths, weights_by_file, weights_files_regex, weights_sources
from instrumentgen.cluster import ClusterError, check_slurm_run, limit_local_gpu_jobs
from instrumentgen.codedeps import module_files
from instrumentgen.config import check_profile_overlays, validate_params


configfile: "params.yaml"


try:
    check_profile_overlays(config.get("profile"), workflow.overwrite_configfiles)
    P = validate_params(config)
    settings.check_workflow_params(P)
    WEIGHTS = weights_by_file(P)  # weights file -> dac | clap | vggish (rule fetch_weights)
except ValueError as err:  # a ParamsError, or two weights files on one path
    raise WorkflowError(str(err)) from None

PROFILE = P["profile"]
PATHS = Paths(P)  # every file of this profile: data/<profile>, results/<profile>, logs/<profile>
SPLITS = P["data"]["splits"]
VARIANTS = P["variants"]
TASKS = settings.TASKS
EMBEDDERS = settings.embedders(P)
ENV = "../envs/instrumentgen.yaml"  # conda equivalent of `make setup`

envvars:
    "PATH",


# Jobs run `python -m instrumentgen...` with the interpreter running Snakemake; offline profiles never
# ask a model hub.
settings.prepare_environment(P, os.environ, sys.executable)


wildcard_constraints:
    split="|".join(SPLITS),
    variant="|".join(VARIANTS),
    task="|".join(TASKS),
    embedder="|".join(EMBEDDERS),


# Where jobs run (instrumentgen.cluster). A local run without `--resources gpu=N` (a bare
# `snakemake --cores all`) holds one GPU job per GPU present, at least one, instead of starting every
# GPU job at once on cuda:0. Cluster runs (`--jobs`, e.g. the Slurm profile) leave GPUs to the scheduler.
limit_local_gpu_jobs(workflow)
# What the heavy jobs ask a cluster for (params `cluster`: mem_mb, runtime); the rest get the profile's
# default-resources.
CLUSTER = P["cluster"]


onstart:
    # Before the Slurm executor submits anything: the cluster answers and has the GPUs and CPUs asked for.
    try:
        check_slurm_run(workflow)
    except ClusterError as err:
        raise WorkflowError(str(err)) from None


def code(*modules, follow_imports=True, exclude=()):
    """Source files that a step runs, ``modules`` (relative to src/instrumentgen) plus the package modules
    they import, listed as inputs so that code changes re-trigger the rule."""
    package_dir = Path(workflow.basedir) / "src" / "instrumentgen"
    files = module_files(*modules, follow_imports=follow_imports, exclude=exclude, package_dir=package_dir)
    return [os.path.relpath(f) for f in files]


def raw_split(wildcards):
    """Folder of an NSynth-format split: downloaded (paper) or synthesized (offline profiles)."""
    return PATHS.raw_split(wildcards.split)


def parent_of_output(wildcards, output):
    """Folder holding a rule's first output."""
    return os.path.dirname(output[0])


def store_files(split):
    """The resampled store of ``split`` (a wildcard pattern such as "{split}" is fine)."""
    return multiext(PATHS.store(split), ".npy", ".parquet")


def store_prefix(wildcards, input):
    """Prefix of a rule's resampled-store input (``data/<p>/resampled/<split>``)."""
    return os.path.splitext(input.store[0])[0]


# Settings of the rules (instrumentgen.workflow_settings).
ALL_CORES = settings.ALL_CORES  # threads of a job that uses every core (capped at --cores)
GPU_ENCODERS = settings.gpu_encoders(P)
UNUSED_ENCODER_CODE = settings.unused_encoder_code(P)  # not inputs: see workflow_settings
LM_JSON = settings.lm_json(P)
TRAIN_LAUNCHER = settings.train_launcher(P["train"]["processes"])
GPU_TRAINING = settings.gpu_training(P)
TRAIN_THREADS = settings.job_threads(P["train"]["threads"])
GEN = P["generate"]
GPU_GENERATION = settings.gpu_generation(P)
GEN_THREADS = settings.job_threads(GEN["threads"])
VGGISH = P["evaluate"]["vggish"]
LISTENING = P["listening"]
ANCHOR_DECODING_JSON = settings.anchor_decoding_json(P)


# ---------------------------------------------------------------- wildcards and inputs -> Python
def weights_source(wildcards):
    """The params section of the weights file a fetch_weights job downloads."""
    return weights_sources(P)[WEIGHTS[wildcards.weights_file]]


def train_json(wildcards):
    return settings.train_json(P, wildcards.variant)


def decoding_json(wildcards):
    return settings.decoding_json(P, wildcards.variant)


def training_inputs(wildcards):
    return args.training_inputs(PATHS, wildcards.variant)


def reference_args(wildcards, input):
    return args.reference_args(input)


def generation_inputs(wildcards):
    return args.generation_inputs(PATHS, wildcards.variant, wildcards.task)


def task_args(wildcards):
    return args.task_args(P, wildcards.task)


def embedder_model(wildcards):
    """The model file of an evaluation embedder."""
    return PATHS.clap if wildcards.embedder == "clap" else PATHS.vggish


def embedder_batch(wildcards):
    return P["clap"]["batch_size"] if wildcards.embedder == "clap" else VGGISH["batch_size"]


def embedder_code(wildcards):
    """Source files of embed_notes and of the embedder it loads (not the other one's)."""
    unused = ("vggish/model.py",) if wildcards.embedder == "clap" else ()
    return code("metrics/embed_notes.py", exclude=UNUSED_ENCODER_CODE + unused)


def vggish_inputs(wildcards):
    return args.vggish_inputs(PATHS, VARIANTS)


def vggish_args(wildcards, input):
    return args.vggish_args(input, VARIANTS)


def variant_pairs(files):
    return args.variant_pairs(VARIANTS, files)


def listening_kit_inputs(wildcards):
    return args.listening_kit_inputs(PATHS, VARIANTS)


def listening_pairs(wildcards, input):
    return args.listening_pairs(input, VARIANTS)


def companion_inputs(wildcards):
    return args.companion_inputs(PATHS, VARIANTS)


def companion_pairs(wildcards, input):
    return args.companion_pairs(input, VARIANTS)


def listening_results(wildcards):
    return settings.listening_result_files(LISTENING["results"])


# The companion page's JavaScript and CSS (code() follows Python imports only).
COMPANION_STATIC = [
    os.path.relpath(f) for f in sorted(glob.glob(os.path.join(workflow.basedir, "src/instrumentgen/companion/static/*")))
]
