"""The interface every logger backend implements, and what a backend is told about the run."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LoggerContext:
    """Where and under which names a run is tracked (derived in training/resolve.py)."""

    experiment: str
    group: str
    run_name: str
    run_dir: Path
    experiments_dir: Path
    resume_id: str | None = None
    """The backend's run id from an earlier attempt of this run (resume continues that tracked run)."""


class ExperimentLogger(Protocol):
    """What the trainer may call; a backend is imported only when selected."""

    @property
    def run_id(self) -> str | None:
        """The backend's id of this run (kept in runtime_info.json so a resume continues it)."""
        ...

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def finish(self, status: str) -> None: ...


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys (`model.encoder.type`); lists become their JSON-like text."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = str(list(value))
        else:
            flat[name] = value
    return flat


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The number-valued entries of a metrics record (drops `epoch` and any text)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "epoch"
    }


def import_backend(module: str, extra: str):
    """Import an optional backend module, or fail with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ValueError(
            f"logger backend {extra!r} needs the {module} package, which is not installed ({err}). "
            f"Install it with: pip install -e '.[{extra}]' (or pip install {module}), or pass --logger.backend none."
        ) from err
