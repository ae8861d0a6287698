"""Experiment-tracking backend (discriminated by `backend`). The run directory always holds metrics and plots."""

from typing import TYPE_CHECKING, Literal

from glovita.configs.base import GlovitaConfig, choice


class NoneLoggerConfig(GlovitaConfig):
    """No tracking backend: metrics, configs and plots still go to the run directory."""

    backend: Literal["none"] = "none"
    """Logger backend tag."""


class MlflowLoggerConfig(GlovitaConfig):
    """MLflow tracking (pip install -e .[mlflow]): params, per-epoch metrics, test metrics and plots."""

    backend: Literal["mlflow"] = "mlflow"
    """Logger backend tag."""
    tracking_uri: str | None = None
    """MLflow tracking URI; unset uses a local store: sqlite:///<experiments_dir>/mlflow/mlflow.db."""
    experiment_name: str | None = None
    """MLflow experiment; unset uses glovita_<dataset>."""
    run_name: str | None = None
    """MLflow run name; unset uses <group>_fold<fold>."""


class WandbLoggerConfig(GlovitaConfig):
    """Weights & Biases tracking (pip install -e .[wandb]); mode offline writes runs to sync later."""

    backend: Literal["wandb"] = "wandb"
    """Logger backend tag."""
    project: str | None = None
    """W&B project; unset uses glovita_<dataset>."""
    entity: str | None = None
    """W&B entity (user or team); unset uses your default entity."""
    run_name: str | None = None
    """W&B run name; unset uses <group>_fold<fold>. The W&B group is always <group>."""
    mode: Literal["online", "offline", "disabled"] | None = None
    """online, offline (sync later with `wandb sync`) or disabled; unset honours WANDB_MODE, else online."""
    tags: tuple[str, ...] = ()
    """W&B run tags."""


class TensorboardLoggerConfig(GlovitaConfig):
    """TensorBoard event files in the run directory (pip install -e .[tensorboard]): scalars, learning rates, the
    run's plots as images, the config, and hyper-parameters with the test metrics; `tensorboard --logdir
    experiments` shows every run."""

    backend: Literal["tensorboard"] = "tensorboard"
    """Logger backend tag."""


LoggerConfigMembers = NoneLoggerConfig | WandbLoggerConfig | MlflowLoggerConfig | TensorboardLoggerConfig
"""The members of LoggerConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    LoggerConfig = LoggerConfigMembers
else:
    LoggerConfig = choice(LoggerConfigMembers, discriminator="backend")
