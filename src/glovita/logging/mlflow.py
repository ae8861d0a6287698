"""The `mlflow` backend: one MLflow run per GloViTa run, in a local SQLite store unless a tracking URI is given."""

from pathlib import Path
from typing import Any

from glovita.logging.base import LoggerContext, flatten, import_backend, numeric

_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
_MAX_PARAM_LENGTH = 6000
"""MLflow rejects longer parameter values."""


def default_tracking_uri(experiments_dir: Path) -> str:
    """sqlite:///<experiments_dir>/mlflow/mlflow.db (MLflow's own file store is in maintenance mode)."""
    store = (experiments_dir / "mlflow").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


class MlflowLogger:
    """One MLflow run; `tracking_uri` None uses the local SQLite store under the experiments folder."""

    def __init__(self, tracking_uri: str | None, context: LoggerContext) -> None:
        import_backend("mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        if tracking_uri is None:
            self.tracking_uri = default_tracking_uri(context.experiments_dir)
            artifacts = (context.experiments_dir / "mlflow" / "artifacts").resolve().as_uri()
        else:
            self.tracking_uri, artifacts = tracking_uri, None
        self.client = MlflowClient(self.tracking_uri)
        name = context.experiment
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(name, artifact_location=artifacts)
        )
        if context.resume_id is not None:
            self.run_id = context.resume_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {"glovita.group": context.group, "glovita.run_dir": str(context.run_dir)}
            run = self.client.create_run(experiment_id, run_name=context.run_name, tags=tags)
            self.run_id = run.info.run_id

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        params = {**flatten(config), **flatten(metadata, "add_log.")}
        params.pop("add_log", None)
        existing = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)[:_MAX_PARAM_LENGTH]) for k, v in params.items() if k not in existing]
        tags = [RunTag(f"add_log.{k}", str(v)) for k, v in flatten(metadata).items()]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=new[start : start + 100])
        if tags:
            self.client.log_batch(self.run_id, tags=tags)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, v, now, step) for k, v in numeric(metrics).items()]
        self.client.log_batch(self.run_id, metrics=values)

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=_STATUS.get(status, "FAILED"))
