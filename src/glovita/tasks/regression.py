"""Regression: K real values per sample."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import TARGETS
from glovita.tasks.base import Target

REGRESSION_METRICS = ("mae", "mse", "r2", "pearson")


class RegressionTask:
    """Values (B, K) against predictions (B, K); data.task Regression."""

    name = "regression"
    classifies = False
    per_frame = False
    dense = False
    predicts_images = False
    target_field = TARGETS
    multilabel = False
    probabilities_text = "none (the logits are the predicted values)"

    def __init__(self, num_outputs: int) -> None:
        self.num_outputs = num_outputs

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.regression import RegressionMetrics

        return RegressionMetrics(self.num_outputs, device)

    def metric_names(self) -> list[str]:
        return list(REGRESSION_METRICS)

    def default_best_metric(self) -> str:
        return "val_mae"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return ["prediction"] if num_outputs == 1 else [f"prediction_{i}" for i in range(num_outputs)]

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        return [f"{v:.6g}" for v in values]

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities  # the predicted values themselves

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        try:
            return tuple(float(v) for v in raw.strip().split(";"))
        except ValueError:
            raise ValueError(f"{where}: label {raw!r} is not numbers.") from None

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        return []
