"""The named inputs of the Snakemake rules that read a file per variant (or per split, per set of notes),
and the command-line arguments their commands build from those inputs.

Each ``*_inputs`` function returns what a rule unpacks as its ``input:`` (names → paths from
:class:`instrumentgen.artifacts.Paths`); the matching ``*_args``/``*_pairs`` function turns the rule's
``input`` (passed as ``inputs``: Snakemake's named list, or any mapping with ``keys()``) back into the
arguments of its CLI, in the order of params ``variants``. Both live here, so input names and flags agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instrumentgen.artifacts import Paths
from instrumentgen.variants import get_variant
from instrumentgen.workflow_settings import TASKS, VGGISH_UNAVAILABLE, t2i_grid_json

TRAINING_SPLITS = ("train", "valid")  # what a variant trains on, and validates on


def variant_pairs(variants: Sequence[str], files: Sequence[str]) -> str:
    """``VARIANT=FILE ...``: one file per variant, in the order of ``variants``."""
    return " ".join(f"{variant}={path}" for variant, path in zip(variants, files, strict=True))


def sha256_arg(source: Mapping[str, Any]) -> str:
    """`` --sha256 DIGEST`` for pretrained weights whose params give a digest (VGGish's), else nothing."""
    return f" --sha256 {source['sha256']}" if source.get("sha256") else ""


# ---------------------------------------------------------------- training
def training_inputs(paths: Paths, variant: str) -> dict[str, str]:
    """The feature caches a variant trains on (``train_codes``, ``train_clap``, ``valid_codes``,
    ``valid_clap``); a variant of the fixed CLAP scheme also reads the reference notes
    (``train_reference``, ``valid_reference``)."""
    files = {
        f"{split}_{kind}": path(split)
        for split in TRAINING_SPLITS
        for kind, path in (("codes", paths.codes), ("clap", paths.clap_audio))
    }
    if get_variant(variant).scheme == "fixed":
        files.update({f"{split}_reference": paths.reference(split) for split in TRAINING_SPLITS})
    return files


def reference_args(inputs: Mapping[str, Any]) -> str:
    """``--train-reference``/``--valid-reference`` for the variants whose inputs have the references."""
    if "train_reference" not in inputs.keys():
        return ""
    return f"--train-reference {inputs['train_reference']} --valid-reference {inputs['valid_reference']}"


# ---------------------------------------------------------------- generation
def generation_inputs(paths: Paths, variant: str, task: str) -> dict[str, str]:
    """What one generation reads: the variant's model, the codec, and the CLAP cache of its task's prompts
    (S2I: the test notes' audio embeddings; T2I: the text prompts')."""
    clap = paths.clap_audio("test") if task == "s2i" else paths.clap_text
    return {"model": paths.lm(variant), "codec": paths.codec, "clap": clap}


def task_args(params: Mapping[str, Any], task: str) -> str:
    """``--grid`` for T2I (the S2I cells come from the test instruments)."""
    return f"--grid '{t2i_grid_json(params)}'" if task == "t2i" else ""


# ---------------------------------------------------------------- evaluation
def vggish_inputs(paths: Paths, variants: Sequence[str]) -> dict[str, str]:
    """The VGGish embeddings of every set of Tables 2-3 (none without VGGish, evaluate.vggish.enabled)."""
    if not paths.params["evaluate"]["vggish"]["enabled"]:
        return {}
    return {
        "vggish_test": paths.embeddings("vggish", "test"),
        "vggish_reconstruction": paths.embeddings("vggish", "reconstruction_test"),
        **{f"vggish_{v}_{t}": paths.embeddings("vggish", f"{v}_{t}") for v in variants for t in TASKS},
    }


def vggish_args(inputs: Mapping[str, Any], variants: Sequence[str]) -> str:
    """``--vggish-*`` arguments of ``metrics.evaluate`` for the inputs of :func:`vggish_inputs`, or what
    the FAD-VGGish column says without them."""
    if "vggish_test" not in inputs.keys():
        return f"--vggish-unavailable '{VGGISH_UNAVAILABLE}'"
    pairs = {t: variant_pairs(variants, [inputs[f"vggish_{v}_{t}"] for v in variants]) for t in TASKS}
    return (
        f"--vggish-test {inputs['vggish_test']} --vggish-reconstruction {inputs['vggish_reconstruction']}"
        f" --vggish-s2i {pairs['s2i']} --vggish-t2i {pairs['t2i']}"
    )


# ---------------------------------------------------------------- listening tests and companion page
def _test_store(paths: Paths) -> list[str]:
    return [paths.store_audio("test"), paths.store_index("test")]


def listening_kit_inputs(paths: Paths, variants: Sequence[str]) -> dict[str, Any]:
    """What the webMUSHRA kit reads: the test notes, their CLAP cache (the S2I queries), every variant's
    S2I notes and exported T2I instruments, and the first variant's model (the anchor's architecture)."""
    return {
        "test_store": _test_store(paths),
        "clap": paths.clap_audio("test"),
        "s2i": [paths.generated(v, "s2i") for v in variants],
        "s2i_audio": [paths.generated_audio(v, "s2i") for v in variants],
        "t2i": [paths.instruments_index(v, "t2i") for v in variants],
        "t2i_instruments": [paths.instruments(v, "t2i") for v in variants],
        "anchor_like": paths.lm(variants[0]),
        "codec": paths.codec,
    }


def listening_pairs(inputs: Mapping[str, Any], variants: Sequence[str]) -> str:
    """``--s2i VARIANT=MANIFEST ... --t2i VARIANT=INDEX ...`` of the kit's inputs."""
    return f"--s2i {variant_pairs(variants, inputs['s2i'])} --t2i {variant_pairs(variants, inputs['t2i'])}"


def companion_inputs(paths: Paths, variants: Sequence[str]) -> dict[str, Any]:
    """What the companion page shows: every variant's S2I and T2I notes with their export indexes (the
    phrases), the test notes (S2I ground truth) and the prompt file (T2I titles)."""
    inputs: dict[str, Any] = {"test_store": _test_store(paths), "prompts": paths.params["prompts"]["file"]}
    for task in TASKS:
        inputs[task] = [paths.generated(v, task) for v in variants]
        inputs[f"{task}_audio"] = [paths.generated_audio(v, task) for v in variants]
        inputs[f"{task}_exports"] = [paths.instruments_index(v, task) for v in variants]
        inputs[f"{task}_instruments"] = [paths.instruments(v, task) for v in variants]
    return inputs


def companion_pairs(inputs: Mapping[str, Any], variants: Sequence[str]) -> str:
    """``--s2i VARIANT=MANIFEST ... --s2i-exports VARIANT=INDEX ...`` and the same for T2I."""
    return " ".join(
        f"--{flag} {variant_pairs(variants, inputs[key])}"
        for task in TASKS
        for flag, key in ((task, task), (f"{task}-exports", f"{task}_exports"))
    )
