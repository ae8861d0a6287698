"""`glovita_show_augmentations`: which data and policy to preview, and where the grid goes."""

from pathlib import Path

from pydantic import Field

from glovita.configs.base import GlovitaConfig
from glovita.configs.data import DataConfig, DigitsConfig
from glovita.configs.model import ModelConfig


class ShowAugmentationsConfig(GlovitaConfig):
    """A PNG grid: each row one training image, first the test policy's view, then draws of the train policy."""

    num_samples: int = Field(8, gt=0, le=64)
    """Rows: training images picked with a fixed seed."""
    repeats: int = Field(5, gt=0, le=16)
    """Columns of augmented draws per image (after the test-policy column)."""
    seed: int = 0
    """Seed of the image choice and the augmentation draws."""
    output_file: Path | None = None
    """PNG to write; unset writes augmentations_<dataset>_<train policy>.png in the current folder."""
    data: DataConfig = DigitsConfig()
    """Dataset and augmentation settings (--data.augmentation.train_policy picks the policy to preview)."""
    model: ModelConfig = ModelConfig()
    """Encoder whose preprocessing defaults (size, mean, std) apply; no weights are loaded."""
