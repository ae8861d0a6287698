"""Metric names per task, their direction, and resolution of `training.best_checkpoint_metric`.

Validation metrics are logged as `val_<name>`, test metrics as `test_<name>`; `val_loss` is always there.
With EMA on, the averaged weights add `val_ema_<name>` and `test_ema_<name>`.
"""

import difflib

CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "ece")
REGRESSION = ("mae", "mse", "r2", "pearson")
LOWER_IS_BETTER = ("loss", "mae", "mse", "ece")
ALIASES = {"f1": "f1_macro", "acc": "accuracy", "auc": "auroc", "bacc": "balanced_accuracy", "ap": "map"}
"""Short names accepted by training.best_checkpoint_metric (case-insensitive)."""


MULTILABEL = ("auroc", "map", "f1_macro")
FRAMEWISE = ("accuracy", "f1_macro", "edit", "f1_at_10", "f1_at_25", "f1_at_50")
"""Per-frame labels (data.subtask framewise): frame accuracy and F1, segmental edit score, F1@{10,25,50}."""


def metric_names(task: str, num_classes: int, subtask: str = "multiclass") -> list[str]:
    """Metric names (without split prefix) computed for a task, per-class values included."""
    if task == "Regression":
        return list(REGRESSION)
    if subtask == "multilabel":
        return [*MULTILABEL, *(f"auroc_class_{i}" for i in range(num_classes))]
    if subtask == "framewise":
        return [*FRAMEWISE, *(f"f1_class_{i}" for i in range(num_classes))]
    per_class = [f"{kind}_class_{i}" for kind in ("f1", "auroc") for i in range(num_classes)]
    return [*CLASSIFICATION, *per_class]


def higher_is_better(name: str) -> bool:
    return name.removeprefix("val_").removeprefix("test_").removeprefix("ema_") not in LOWER_IS_BETTER


def resolve_best_metric(
    requested: str | None, task: str, num_classes: int, subtask: str = "multiclass", ema: bool = False
) -> tuple[str, str]:
    """(validation key, 'max' or 'min') for best.pt; unset picks val_accuracy / val_auroc (multilabel) / val_mae.

    With `ema`, the EMA weights' keys (val_ema_accuracy, ...) may be chosen too."""
    names = ["loss", *metric_names(task, num_classes, subtask)]
    valid = [f"val_{n}" for n in names] + ([f"val_ema_{n}" for n in names] if ema else [])
    if requested is None:
        defaults = {"Regression": "val_mae", "Classification": "val_accuracy"}
        key = "val_auroc" if subtask == "multilabel" else defaults[task]
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
    return key, "max" if higher_is_better(key) else "min"
