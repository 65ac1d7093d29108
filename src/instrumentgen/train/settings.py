"""Training settings (``params.yaml``'s ``train`` section) and what makes two runs the same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from instrumentgen.checks import int_at_least, is_number, known_keys, number_at_least, number_in_range
from instrumentgen.lm.objective import get_objective

# Settings that change how a run is observed or executed, not the trajectory of its weights: a checkpoint
# written under other values of these is still a valid place to resume from.
NON_TRAJECTORY = ("checkpoint_every", "log_every", "valid_every", "compile", "threads", "processes")

# train.precision: auto = bf16 autocast on CUDA, fp32 on a CPU (the paper profile); native = bf16 wherever
# the hardware multiplies bfloat16 natively (CUDA, or a CPU with AVX512-BF16 or AMX), fp32 elsewhere (the
# tiny profile: 1.8x faster training steps on the 2-core AMD EPYC in the training benchmark, where bf16
# matmuls run 4-7x faster than fp32; a CPU without those instructions emulates bf16, unmeasured here, so
# it stays on fp32).
PRECISIONS = ("auto", "native", "bf16", "fp32")
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively: ``cpuinfo``'s first ``flags`` line lists AVX512-BF16
    or AMX-BF16 (Linux on x86). False where the file is missing or unreadable (another OS or
    architecture): fp32 is the safe choice there."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(NATIVE_BF16_CPU_FLAGS & set(line.partition(":")[2].split()))
    return False


def uses_bf16(precision: str, device_type: str, native_cpu: bool | None = None) -> bool:
    """Whether training with ``train.precision`` = ``precision`` on a ``device_type`` device ("cuda",
    "cpu") runs under bf16 autocast. ``native_cpu``: whether the CPU has native bf16 (default: read from
    :func:`cpu_has_native_bf16`, only when ``precision`` is native on a CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision in ("bf16", "fp32"):
        return precision == "bf16"
    if device_type == "cuda":
        return True
    if precision == "auto":
        return False
    return cpu_has_native_bf16() if native_cpu is None else native_cpu


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1_000_000
    batch_size: int = 48
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup_steps: int = 4000
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    cfg_dropout: float = 0.3
    attribute_dropout: float = 0.3
    span_length: int = 3
    checkpoint_every: int = 5000
    log_every: int = 100
    valid_every: int = 5000
    valid_max_notes: int = 4096
    precision: str = "auto"  # auto | native | bf16 | fp32 (PRECISIONS above)
    compile: str = "auto"  # auto (on CUDA) | "true" | "false"
    threads: int = 0  # CPU threads for torch (0 = torch's default)
    processes: int = 1  # processes of the torchrun launch (the rule launches them; informative here)

    def __post_init__(self) -> None:
        betas = tuple(self.betas) if isinstance(self.betas, list | tuple) else ()
        if len(betas) != 2 or not all(is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"train.betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
        positive = (
            "steps",
            "batch_size",
            "span_length",
            "checkpoint_every",
            "log_every",
            "valid_every",
            "valid_max_notes",
            "processes",
        )
        for name in positive:
            object.__setattr__(self, name, int_at_least(f"train.{name}", getattr(self, name), 1))
        for name in ("warmup_steps", "threads"):
            object.__setattr__(self, name, int_at_least(f"train.{name}", getattr(self, name), 0))
        for name in ("cfg_dropout", "attribute_dropout", "min_lr_ratio"):
            object.__setattr__(self, name, number_in_range(f"train.{name}", getattr(self, name), 0.0, 1.0))
        for name in ("lr", "grad_clip"):
            value = number_at_least(f"train.{name}", getattr(self, name), 0.0, strict=True)
            object.__setattr__(self, name, value)
        decay = number_at_least("train.weight_decay", self.weight_decay, 0.0)
        object.__setattr__(self, "weight_decay", decay)
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"train.checkpoint_every ({self.checkpoint_every}) must be a multiple of train.log_every "
                f"({self.log_every}): a resumed run re-logs from a checkpoint, which must fall on a log step"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if str(self.compile) not in ("auto", "true", "false", "True", "False"):
            raise ValueError(f"train.compile must be auto, true or false, got {self.compile!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSettings:
        known_keys("train settings", values, (f.name for f in fields(cls)))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trajectory(self) -> dict[str, Any]:
        """The settings that determine the weights reached (fingerprinted for resume)."""
        return {k: v for k, v in self.to_dict().items() if k not in NON_TRAJECTORY}


BY_OBJECTIVE = "by_objective"  # params.yaml train.by_objective.<objective>: that objective's overrides
# Fixed for every variant: the workflow launches (torchrun processes) and reserves cores (threads) for all
# training jobs alike.
PER_RUN = ("processes", "threads")


def settings_for_objective(train: dict[str, Any], objective: str) -> dict[str, Any]:
    """The ``train`` section of the params for a variant of ``objective``: the shared settings updated by
    ``train.by_objective.<objective>`` (each objective may get its own share of the budget: MAGNeT's
    masked loss learns stage 0 more slowly than AR's), without the ``by_objective`` table itself, so a
    change to one objective's overrides leaves the others' settings, and models, as they are.
    Every objective's settings are validated as :class:`TrainSettings`, whichever is asked for; an
    unknown objective or setting is an error that names it."""
    shared = {k: v for k, v in train.items() if k != BY_OBJECTIVE}
    table = train.get(BY_OBJECTIVE) or {}
    if not isinstance(table, dict):
        raise ValueError(f"train.{BY_OBJECTIVE} must be a mapping of objective -> settings, got {table!r}")
    for name, overrides in table.items():
        try:
            get_objective(name)
        except ValueError as err:
            raise ValueError(f"train.{BY_OBJECTIVE}.{name}: {err}") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"train.{BY_OBJECTIVE}.{name} must be a mapping of settings, got {overrides!r}")
        known = {f.name for f in fields(TrainSettings)} - set(PER_RUN)
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"train.{BY_OBJECTIVE}.{name}.{unknown[0]} is not a per-objective training setting; "
                f"known: {', '.join(sorted(known))}"
            )
        TrainSettings.from_dict({**shared, **overrides})  # every objective's, whichever is asked for
    merged = {**shared, **table.get(get_objective(objective).name, {})}
    TrainSettings.from_dict(merged)
    return merged
