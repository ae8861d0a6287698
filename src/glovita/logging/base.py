"""The interface every logger backend implements."""

from pathlib import Path
from typing import Any, Protocol


class ExperimentLogger(Protocol):
    """What the trainer may call; a backend is imported only when selected."""

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def finish(self, status: str) -> None: ...
