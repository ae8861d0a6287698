"""Logger backend selection; each backend module (and its package) is imported only when chosen."""

from glovita.configs.logging import LoggerConfig, MlflowLoggerConfig, NoneLoggerConfig, WandbLoggerConfig
from glovita.logging.base import ExperimentLogger, LoggerContext


def build_logger(cfg: LoggerConfig, context: LoggerContext) -> ExperimentLogger:
    match cfg:
        case NoneLoggerConfig():
            from glovita.logging.none import NoneLogger

            return NoneLogger()
        case MlflowLoggerConfig():
            from glovita.logging.mlflow import MlflowLogger

            return MlflowLogger(cfg, context)
        case WandbLoggerConfig():
            from glovita.logging.wandb import WandbLogger

            return WandbLogger(cfg, context)
        case _:
            raise TypeError(f"No logger branch for {type(cfg).__name__} in glovita/logging/factory.py.")
