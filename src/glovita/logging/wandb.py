"""The `wandb` backend: project glovita_<dataset>, group <group>, one W&B run per fold."""

from pathlib import Path
from typing import Any

from glovita.logging.base import LoggerContext, import_backend, numeric


class WandbLogger:
    """One W&B run in project `context.experiment`, group `context.group`; `mode` None honours WANDB_MODE."""

    def __init__(self, entity: str | None, mode: str | None, tags: tuple[str, ...], context: LoggerContext) -> None:
        wandb = import_backend("wandb", "wandb")
        folder = (context.experiments_dir / "wandb").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=context.experiment,
            entity=entity,
            group=context.group,
            name=context.run_name,
            tags=list(tags) or None,
            mode=mode,
            dir=str(folder),
            id=context.resume_id,
            resume="allow" if context.resume_id else None,
            reinit="create_new",
        )
        self.run_id = self.run.id

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.run.config.update({**config, "add_log": metadata}, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        values = numeric(metrics)
        if all(k.startswith("test_") for k in values):
            self.run.summary.update(values)
        self.run.log({**values, "epoch": step}, step=step)

    def log_artifact(self, path: Path) -> None:
        import wandb

        self.run.log({path.stem: wandb.Image(str(path))})

    def finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "completed" else 1)
