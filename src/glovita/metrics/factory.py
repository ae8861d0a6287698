"""Metric-set assembly by task; torchmetrics is imported inside the branch that needs it."""

import torch


def build_metrics(task: str, num_classes: int, device: torch.device, subtask: str = "multiclass"):
    """The metric set of a task (keys in metrics/keys.py)."""
    if task == "Classification" and subtask == "multilabel":
        from glovita.metrics.multilabel import MultilabelMetrics

        return MultilabelMetrics(num_classes, device)
    if task == "Classification" and subtask == "framewise":
        from glovita.metrics.framewise import FramewiseMetrics

        return FramewiseMetrics(num_classes, device)
    if task == "Classification":
        from glovita.metrics.classification import ClassificationMetrics

        return ClassificationMetrics(num_classes, device)
    if task == "Regression":
        from glovita.metrics.regression import RegressionMetrics

        return RegressionMetrics(num_classes, device)
    raise ValueError(f"data.task={task!r} has no metrics. Choose Classification or Regression.")
