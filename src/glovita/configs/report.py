"""`glovita_report`: which run (or cross-validation group) to (re)build report.html for."""

from pathlib import Path
from typing import Annotated

import tyro
from pydantic import Field

from glovita.configs.base import GlovitaConfig


class ReportConfig(GlovitaConfig):
    """(Re)build report.html of runs (a run directory) or of cross-validation groups (a folder with cv_summary.json;
    its folds' reports too)."""

    paths: Annotated[list[Path], tyro.conf.Positional] = Field(default_factory=list)
    """Run directories or CV group folders."""
