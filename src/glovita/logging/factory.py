"""Logger backend selection."""

from glovita.configs.logging import LoggerConfig, NoneLoggerConfig
from glovita.logging.base import ExperimentLogger


def build_logger(cfg: LoggerConfig) -> ExperimentLogger:
    match cfg:
        case NoneLoggerConfig():
            from glovita.logging.none import NoneLogger

            return NoneLogger()
        case _:
            raise TypeError(f"No logger branch for {type(cfg).__name__} in glovita/logging/factory.py.")
