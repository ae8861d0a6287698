"""`glovita_sweep`: an Optuna study over glovita_train's config fields."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class SweepConfig(GlovitaConfig):
    """Search the config fields named in a space file; the glovita_train flags after `--` are the fixed part.
    Each trial is an ordinary run directory in the group <study>/trial_<n>."""

    study: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Study name (also the group folder of its trials)."""
    trials: int = Field(gt=0)
    """Finished trials (completed or pruned) the study should hold; a resumed study runs only the missing ones."""
    space: Path
    """YAML/JSON file: config field -> {type: float|int, low, high, log} or {type: categorical, choices: [...]}."""
    storage: str = "sqlite:///experiments/sweeps.db"
    """Optuna storage URL; several processes or machines share a study through one storage (an RDB URL such
    as postgresql://... for many machines; sqlite for one)."""
    pruner: Literal["median", "none"] = "median"
    """Stop a trial whose validation metric is below the median of earlier trials at the same epoch."""
    startup_trials: int = Field(4, ge=0)
    """Trials that always run to the end before the pruner judges others."""
    warmup_epochs: int = Field(2, ge=0)
    """Epochs of every trial that are never pruned."""
    seed: int = 0
    """Seed of the TPE sampler (plus the worker's index and the trials the study held when this process joined, so
    workers sharing a study draw distinct points)."""
    worker: int | None = Field(None, ge=0)
    """This process's index among processes sharing the study (0, 1, ...); unset reads SLURM_ARRAY_TASK_ID,
    SLURM_PROCID or RANK, else 0."""
