"""Metric-set assembly by task."""

import torch

from glovita.metrics.classification import ClassificationMetrics
from glovita.metrics.regression import RegressionMetrics


def build_metrics(task: str, num_classes: int, device: torch.device) -> ClassificationMetrics | RegressionMetrics:
    """The metric set of a task (keys in metrics/keys.py)."""
    if task == "Classification":
        return ClassificationMetrics(num_classes, device)
    if task == "Regression":
        return RegressionMetrics(num_classes, device)
    raise ValueError(f"data.task={task!r} has no metrics. Choose Classification or Regression.")
