"""`glovita_compare`: which runs to tabulate, how to sort them, where the table goes."""

from pathlib import Path
from typing import Annotated

import tyro
from pydantic import Field

from glovita.configs.base import GlovitaConfig


class CompareConfig(GlovitaConfig):
    """One row per run: the settings that differ between the runs, best epoch, test metrics, wall time, speed."""

    runs: Annotated[list[Path], tyro.conf.Positional] = Field(default_factory=list)
    """Run directories (holding config.json), or folders searched for them (a group, a dataset folder,
    experiments/); shell globs such as experiments/digits/*/0 work."""
    sort: str | None = None
    """Column to sort by (e.g. test_accuracy, wall_seconds); best first: descending, except losses, errors and
    calibration errors (loss, ece, mae, mse, rmse, seconds), which sort ascending."""
    output_dir: Path | None = None
    """Folder for compare.csv and compare.md; unset: the runs' common parent folder."""
