"""Logger backend selection; each backend module (and its package) is imported only when chosen."""

from glovita.configs.logging import (
    LoggerConfig,
    MlflowLoggerConfig,
    NoneLoggerConfig,
    TensorboardLoggerConfig,
    WandbLoggerConfig,
)
from glovita.logging.base import ExperimentLogger, LoggerContext


def build_logger(cfg: LoggerConfig, context: LoggerContext) -> ExperimentLogger:
    """The backend of `cfg.backend`; names (experiment, run) come resolved in `context`."""
    match cfg:
        case NoneLoggerConfig():
            from glovita.logging.none import NoneLogger

            return NoneLogger()
        case MlflowLoggerConfig():
            from glovita.logging.mlflow import MlflowLogger

            return MlflowLogger(cfg.tracking_uri, context)
        case WandbLoggerConfig():
            from glovita.logging.wandb import WandbLogger

            return WandbLogger(cfg.entity, cfg.mode, cfg.tags, context)
        case TensorboardLoggerConfig():
            from glovita.logging.tensorboard import TensorboardLogger

            return TensorboardLogger(context)
        case _:
            raise TypeError(f"No logger branch for {type(cfg).__name__} in glovita/logging/factory.py.")
