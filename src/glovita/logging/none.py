"""The `none` backend: nothing leaves the run directory."""

from pathlib import Path
from typing import Any


class NoneLogger:
    run_id: str | None = None

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        return None

    def log_artifact(self, path: Path) -> None:
        return None

    def finish(self, status: str) -> None:
        return None
