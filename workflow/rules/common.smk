# Shared set-up: parameters (validated, defaults filled), output roots, helpers.
import glob
import json
import os
import sys
from pathlib import Path

from instrumentgen import artifacts
from instrumentgen.cluster import ClusterError, check_slurm_run, limit_local_gpu_jobs
from instrumentgen.codedeps import module_files
from instrumentgen.config import ParamsError, check_profile_overlays, validate_params
from instrumentgen.lm.objective import OBJECTIVES, get_objective
from instrumentgen.train.settings import settings_for_objective
from instrumentgen.train.variants import get_variant


configfile: "params.yaml"


try:
    check_profile_overlays(config.get("profile"), workflow.overwrite_configfiles)
    P = validate_params(config)
except ParamsError as err:
    raise WorkflowError(str(err)) from None

PROFILE = P["profile"]
DATA = f"data/{PROFILE}"  # outputs of different profiles never overwrite each other
RESULTS = f"results/{PROFILE}"
LOGS = f"logs/{PROFILE}"
SPLITS = P["data"]["splits"]
if "train" not in SPLITS:
    raise WorkflowError(f"data.splits = {SPLITS} must include 'train' (models and references learn from it)")
if "valid" not in SPLITS:
    raise WorkflowError(f"data.splits = {SPLITS} must include 'valid' (the language model's validation loss)")
if "test" not in SPLITS:
    raise WorkflowError(f"data.splits = {SPLITS} must include 'test' (S2I generation queries its instruments)")
ENV = "../envs/instrumentgen.yaml"  # conda equivalent of `make setup`

envvars:
    "PATH",


# Jobs run `python -m instrumentgen...`: put the interpreter running Snakemake (the project's
# .venv) first on PATH, so that its `python` is used even when the venv is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
if P["data"]["source"] != "nsynth":
    # Offline profiles: laion_clap/transformers would otherwise try a model hub and hang.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


wildcard_constraints:
    split="|".join(SPLITS),


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
    source = "nsynth" if P["data"]["source"] == "nsynth" else "synthetic"
    return f"{DATA}/{source}/nsynth-{wildcards.split}"


def synthetic_cell_dropout(wildcards):
    """``--cell-dropout`` of the synthesizer: one probability, or ``train=..,valid=..,test=..``."""
    dropout = P["synthetic"]["cell_dropout"]
    if isinstance(dropout, dict):
        return ",".join(f"{s}={dropout[s]}" for s in SPLITS)
    return dropout


def parent_of_output(wildcards, output):
    """Folder holding a rule's first output."""
    return os.path.dirname(output[0])


def store_files(split):
    """The resampled store of ``split`` (a wildcard pattern such as "{split}" is fine)."""
    return multiext(f"{DATA}/resampled/{split}", ".npy", ".parquet")


def store_prefix(wildcards, input):
    """Prefix of a rule's resampled-store input (``data/<p>/resampled/<split>``)."""
    return os.path.splitext(input.store[0])[0]


def weights_file(source):
    """Where a pretrained weights file goes (see instrumentgen.artifacts)."""
    return artifacts.weights_file(source)


def codec_model():
    """The codec file: pretrained DAC weights (paper) or the fitted offline codec."""
    return artifacts.codec_file(P)


def clap_model():
    """The CLAP file: the LAION-CLAP checkpoint (paper) or the small offline CLAP."""
    return artifacts.clap_file(P)


def encoder_reports():
    """Quality reports that need captions (only the synthetic data has them)."""
    return [f"{RESULTS}/features/clap_retrieval.json"] if P["data"]["source"] == "synthetic" else []


# GPU token for the pretrained encoders (paper); the offline ones run on the CPU.
GPU_ENCODERS = int(P["codec"]["kind"] == "dac" or P["clap"]["kind"] == "laion")


# Modules of the encoder kinds this profile does not use (imported lazily, only for the other
# kind): not inputs, so that editing the offline models never re-encodes NSynth, and vice versa.
UNUSED_ENCODER_CODE = (
    ("codec/fitted.py",) if P["codec"]["kind"] == "dac" else ("codec/dac_codec.py",)
) + (("clap/small.py",) if P["clap"]["kind"] == "laion" else ("clap/laion.py",))


# ---------------------------------------------------------------- training (train.smk)
VARIANTS = P["variants"]

wildcard_constraints:
    variant="|".join(VARIANTS),


# Model size: params `lm` plus what the encoders fix (codebooks; CLAP width, 512 for both kinds).
LM_JSON = json.dumps(
    {
        **P["lm"],
        "n_codebooks": P["codec"]["n_codebooks"],
        "codebook_size": P["codec"]["codebook_size"],
        "clap_dim": P["clap"]["small"]["dim"] if P["clap"]["kind"] == "small" else 512,
    },
    sort_keys=True,
)
def train_json(wildcards):
    """A variant's training settings: the shared ones with its objective's overrides."""
    objective = get_variant(wildcards.variant).objective
    return json.dumps(settings_for_objective(P["train"], objective), sort_keys=True)


for _variant in VARIANTS:  # a bad override fails here, not when its training job starts
    settings_for_objective(P["train"], get_variant(_variant).objective)

# One process per GPU under torchrun when train.processes > 1 (DistributedDataParallel).
TRAIN_LAUNCHER = (
    "python"
    if P["train"]["processes"] == 1
    else f"python -m torch.distributed.run --standalone --nproc_per_node {P['train']['processes']}"
)
# GPU tokens per training job: one per process. How many a run has is the profile's `resources: gpu`
# (paper: 1; the offline profiles train on the CPU and give 2, so two variants train side by side).
GPU_TRAINING = P["train"]["processes"]
# CPU threads per training job: train.threads when set (two tiny jobs side by side on 2 cores), else all.
TRAIN_THREADS = P["train"]["threads"] or 16


def training_inputs(wildcards):
    """Feature caches a variant trains on; the fixed variant also needs the reference notes."""
    files = {
        f"{split}_{kind}": f"{DATA}/features/{folder}/{split}.parquet"
        for split in ("train", "valid")
        for kind, folder in (("codes", "codes"), ("clap", "clap_audio"))
    }
    if wildcards.variant == "fixed":
        files.update({f"{split}_reference": f"{DATA}/features/reference/{split}.parquet" for split in ("train", "valid")})
    return files


def reference_args(wildcards, input):
    """``--train-reference``/``--valid-reference`` arguments for the variants that use them."""
    if "train_reference" not in input.keys():
        return ""
    return f"--train-reference {input.train_reference} --valid-reference {input.valid_reference}"


# ---------------------------------------------------------------- generation (generate.smk)
TASKS = ["s2i", "t2i"]

wildcard_constraints:
    task="|".join(TASKS),


GEN = P["generate"]
# Each variant's generation gets only its own decoder's settings (AR sampling or MAGNeT's), so changing
# one decoder's settings does not regenerate the other's variants.
def decoding_json(wildcards):
    section = get_objective(get_variant(wildcards.variant).objective).decoding_section
    return json.dumps({section: GEN[section]}, sort_keys=True)


T2I_GRID_JSON = json.dumps(
    {
        "pitches": list(range(GEN["grid"]["pitch_min"], GEN["grid"]["pitch_max"] + 1, GEN["grid"]["pitch_step"])),
        "velocities": sorted(GEN["grid"]["velocities"]),
    }
)
if GEN["grid"]["pitch_min"] > GEN["grid"]["pitch_max"]:
    raise WorkflowError(
        f"generate.grid.pitch_min {GEN['grid']['pitch_min']} > pitch_max {GEN['grid']['pitch_max']}"
    )
# Generation runs the LM and the codec decoder: on a GPU for the paper, on the CPU offline.
GPU_GENERATION = int(P["codec"]["kind"] == "dac")
GEN_THREADS = GEN["threads"] or 16


def generation_inputs(wildcards):
    """What one (variant, task) generation reads: the model, the codec, the CLAP cache of its task."""
    clap = (
        f"{DATA}/features/clap_audio/test.parquet"
        if wildcards.task == "s2i"
        else f"{DATA}/features/clap_text/prompts.parquet"
    )
    return {"model": f"{DATA}/lm/{wildcards.variant}.pt", "codec": codec_model(), "clap": clap}


def task_args(wildcards):
    """``--grid`` for T2I (the S2I cells come from the test instruments)."""
    return f"--grid '{T2I_GRID_JSON}'" if wildcards.task == "t2i" else ""


# ---------------------------------------------------------------- evaluation (evaluate.smk)
VGGISH = P["evaluate"]["vggish"]
# Embedders of the evaluation: CLAP always, VGGish where its weights exist (the paper profile).
EMBEDDERS = ["clap", "vggish"] if VGGISH["enabled"] else ["clap"]
# What Tables 2-3 say in the FAD-VGGish column without VGGish: a number from random weights would mean
# nothing, so the offline profiles say so.
EVAL_VGGISH_NOTE = "n/a offline"

wildcard_constraints:
    embedder="|".join(EMBEDDERS),


def embedder_model(wildcards):
    """The model file of an evaluation embedder."""
    return clap_model() if wildcards.embedder == "clap" else weights_file(VGGISH)


def embedder_batch(wildcards):
    return P["clap"]["batch_size"] if wildcards.embedder == "clap" else VGGISH["batch_size"]


def embedder_code(wildcards):
    """Source files of embed_notes and of the embedder it loads (not the other one's)."""
    unused = ("vggish/model.py",) if wildcards.embedder == "clap" else ()
    return code("metrics/embed_notes.py", exclude=UNUSED_ENCODER_CODE + unused)


def vggish_inputs(wildcards):
    """The VGGish embeddings of every set of the tables (none without VGGish)."""
    if not VGGISH["enabled"]:
        return {}
    folder = f"{DATA}/evaluation/vggish"
    return {
        "vggish_test": f"{folder}/test.parquet",
        "vggish_reconstruction": f"{folder}/reconstruction_test.parquet",
        **{f"vggish_{v}_{t}": f"{folder}/{v}_{t}.parquet" for v in VARIANTS for t in TASKS},
    }


def vggish_args(wildcards, input):
    """``--vggish-*`` arguments of evaluate_tables, or what the column says without VGGish."""
    if not VGGISH["enabled"]:
        return f"--vggish-unavailable '{EVAL_VGGISH_NOTE}'"
    pairs = {t: " ".join(f"{v}={input[f'vggish_{v}_{t}']}" for v in VARIANTS) for t in TASKS}
    return (
        f"--vggish-test {input.vggish_test} --vggish-reconstruction {input.vggish_reconstruction}"
        f" --vggish-s2i {pairs['s2i']} --vggish-t2i {pairs['t2i']}"
    )


# ---------------------------------------------------------------- listening tests (listening.smk)
LISTENING = P["listening"]
# The anchor decodes with the settings of its architecture's objective: every decoder's section.
ANCHOR_DECODING_JSON = json.dumps(
    {o.decoding_section: GEN[o.decoding_section] for o in OBJECTIVES.values()}, sort_keys=True
)


def listening_kit_inputs(wildcards):
    """What the kit reads: the test notes, their CLAP cache (the S2I queries), every variant's S2I notes
    and exported T2I instruments, and the first variant's model (the anchor's architecture)."""
    return {
        "test_store": multiext(f"{DATA}/resampled/test", ".npy", ".parquet"),
        "clap": f"{DATA}/features/clap_audio/test.parquet",
        "s2i": expand(f"{DATA}/generated/{{variant}}/s2i/manifest.parquet", variant=VARIANTS),
        "s2i_audio": expand(f"{DATA}/generated/{{variant}}/s2i/audio", variant=VARIANTS),
        "t2i": expand(f"{DATA}/instruments/{{variant}}/t2i/index.json", variant=VARIANTS),
        "t2i_instruments": expand(f"{DATA}/instruments/{{variant}}/t2i/instruments", variant=VARIANTS),
        "anchor_like": f"{DATA}/lm/{VARIANTS[0]}.pt",
        "codec": codec_model(),
    }


def listening_pairs(wildcards, input):
    """``--s2i VARIANT=MANIFEST ... --t2i VARIANT=INDEX ...`` in the order of params ``variants``."""
    s2i = " ".join(f"{v}={m}" for v, m in zip(VARIANTS, input.s2i, strict=True))
    t2i = " ".join(f"{v}={i}" for v, i in zip(VARIANTS, input.t2i, strict=True))
    return f"--s2i {s2i} --t2i {t2i}"


# The companion page's JavaScript and CSS (code() follows Python imports only).
COMPANION_STATIC = [
    os.path.relpath(f) for f in sorted(glob.glob(os.path.join(workflow.basedir, "src/instrumentgen/companion/static/*")))
]


def companion_inputs(wildcards):
    """What the companion page shows: every variant's S2I and T2I notes with their export indexes (the
    phrases), the test notes (S2I ground truth) and the prompt file (T2I titles)."""
    inputs = {"test_store": multiext(f"{DATA}/resampled/test", ".npy", ".parquet"), "prompts": P["prompts"]["file"]}
    for task in TASKS:
        inputs[task] = expand(f"{DATA}/generated/{{variant}}/{task}/manifest.parquet", variant=VARIANTS)
        inputs[f"{task}_audio"] = expand(f"{DATA}/generated/{{variant}}/{task}/audio", variant=VARIANTS)
        inputs[f"{task}_exports"] = expand(f"{DATA}/instruments/{{variant}}/{task}/index.json", variant=VARIANTS)
        inputs[f"{task}_instruments"] = expand(f"{DATA}/instruments/{{variant}}/{task}/instruments",
                                               variant=VARIANTS)
    return inputs


def companion_pairs(wildcards, input):
    """``--s2i VARIANT=MANIFEST ... --s2i-exports VARIANT=INDEX ...`` and the same for T2I."""
    return " ".join(
        f"--{flag} " + " ".join(f"{v}={p}" for v, p in zip(VARIANTS, input[key], strict=True))
        for task in TASKS for flag, key in ((task, task), (f"{task}-exports", f"{task}_exports"))
    )


def listening_results(wildcards):
    """webMUSHRA's result files where params listening.results names a folder that has them, so new
    ratings rerun Table 4; none otherwise."""
    folder = LISTENING["results"]
    if not folder:
        return {}
    return {name: f"{folder}/{name}.csv" for name in ("mushra", "lss") if os.path.isfile(f"{folder}/{name}.csv")}
