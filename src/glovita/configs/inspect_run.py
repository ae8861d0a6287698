"""`glovita_inspect`: which run (or which training flags) to inspect, and what to show."""

from pathlib import Path
from typing import Annotated, Literal

import tyro
from pydantic import Field

from glovita.configs.base import GlovitaConfig


class InspectConfig(GlovitaConfig):
    """A run's (or a config's) resolved settings, its layers with their output shapes, and one batch through its own
    data, transforms and model: statistics printed, the batch drawn as a PNG grid."""

    run: Annotated[Path | None, tyro.conf.Positional] = None
    """A run directory (or one of its checkpoints); unset: the training flags that follow describe the run."""
    checkpoint: str = "best.pt"
    """Checkpoint of the run whose weights go into the model (a file name in its checkpoints/ folder)."""
    split: Literal["train", "val", "test"] = "train"
    """Split whose first batch goes through the model: train is the run's first training batch, augmented as it
    was trained on; val and test go through the evaluation transforms."""
    num_samples: int = Field(8, gt=0, le=64)
    """Samples of the batch drawn in the PNG grid."""
    depth: int = Field(3, ge=1, le=8)
    """Module depth of the layer table (1: the model's parts; deeper: their submodules)."""
    output_dir: Path | None = None
    """Where inspect_<split>.png and inspect_<split>.json go; unset: the run directory, or the current folder."""
