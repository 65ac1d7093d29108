"""Training checkpoints live with the model files in :mod:`instrumentgen.lm.checkpoint`; this name stays
for the training loop's imports."""

from instrumentgen.lm.checkpoint import (  # noqa: F401
    FORMAT,
    CheckpointError,
    check_config,
    load_model,
    read_checkpoint,
    save_atomic,
)
