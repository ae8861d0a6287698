"""`glovita_check_dataset`: the dataset part of a training config, checked without training."""

from pydantic import Field

from glovita.configs.base import GlovitaConfig
from glovita.configs.data import DataConfig, DigitsConfig


class CheckDatasetConfig(GlovitaConfig):
    """A dataset config as glovita_train takes it (--data.* flags, or --config with a data section)."""

    data: DataConfig = DigitsConfig()
    """The dataset to check, with the same flags as glovita_train."""
    input_channels: int = Field(3, ge=1)
    """Channels images are read with (glovita_train's model.encoder.input_channels)."""
    max_listed: int = Field(50, gt=0)
    """Problems and entries to drop printed at most (all are counted)."""
