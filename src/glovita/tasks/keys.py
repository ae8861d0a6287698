"""Metric key directions and resolution of `training.best_checkpoint_metric` against a task's keys.

Validation metrics are logged as `val_<name>`, test metrics as `test_<name>`; `val_loss` is always there.
With EMA on, the averaged weights add `val_ema_<name>` and `test_ema_<name>`. The names of each task live
with the task (glovita/tasks/); a training step may add keys of its own (its evaluation logs).
"""

import difflib

from glovita.tasks.base import Task
from glovita.tasks.heads import NamedTask

LOWER_IS_BETTER = ("loss", "mae", "mse", "ece")
ALIASES = {"f1": "f1_macro", "acc": "accuracy", "auc": "auroc", "bacc": "balanced_accuracy", "ap": "map"}
"""Short names accepted by training.best_checkpoint_metric (case-insensitive)."""


def higher_is_better(name: str, lower_is_better: tuple[str, ...] = ()) -> bool:
    """Direction of a key (a named head's keys end like the main head's: size_mae, grade_loss); `lower_is_better`
    adds names of a step's own logged values."""
    bare = name.removeprefix("val_").removeprefix("test_").removeprefix("ema_")
    lower = bare in LOWER_IS_BETTER or any(bare.endswith(f"_{key}") for key in LOWER_IS_BETTER)
    return not lower and bare not in lower_is_better


def resolve_best_metric(
    requested: str | None,
    task: Task,
    ema: bool = False,
    step_keys: tuple[str, ...] = (),
    step_lower_is_better: tuple[str, ...] = (),
    named: list[NamedTask] | None = None,
) -> tuple[str, str]:
    """(validation key, 'max' or 'min') for best.pt; unset picks the task's default (val_accuracy, val_auroc for
    multilabel, val_mae for regression). `step_keys` are what the training step logs in evaluation; `named` heads
    add their keys, prefixed by their names (val_size_mae, val_size_loss).

    With `ema`, the EMA weights' keys (val_ema_accuracy, ...) may be chosen too."""
    names = ["loss", *task.metric_names()]
    for head in named or []:
        names += [f"{head.name}_{key}" for key in ("loss", *head.task.metric_names())]
    valid = [f"val_{n}" for n in names] + ([f"val_ema_{n}" for n in names] if ema else [])
    valid += [f"val_{n}" for n in step_keys if f"val_{n}" not in valid]
    if requested is None:
        key = task.default_best_metric()
    else:
        name = requested.strip().lower().replace("/", "_").removeprefix("val_")
        prefix = "ema_" if name.startswith("ema_") else ""
        name = name.removeprefix("ema_")
        key = f"val_{prefix}{ALIASES.get(name, name)}"
        if key not in valid:
            shown = [k for k in valid if "_class_" not in k]
            close = difflib.get_close_matches(f"val_{name}", valid, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ValueError(
                f"training.best_checkpoint_metric={requested!r} is not a validation metric of this run. "
                f"Valid keys: {', '.join(shown)} (and per-class keys such as val_auroc_class_0).{hint}"
            )
    return key, "max" if higher_is_better(key, step_lower_is_better) else "min"
