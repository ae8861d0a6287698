"""Experiment-tracking backend (discriminated by `backend`)."""

from typing import Literal

from glovita.configs.base import GlovitaConfig


class NoneLoggerConfig(GlovitaConfig):
    """No tracking backend: metrics, configs and plots still go to the run directory."""

    backend: Literal["none"] = "none"
    """Logger backend tag."""


LoggerConfig = NoneLoggerConfig
