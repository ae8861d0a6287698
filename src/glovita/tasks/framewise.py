"""Per-frame classification of videos (temporal action segmentation): a class per frame, padded frames ignored."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import TARGETS
from glovita.tasks.base import Target
from glovita.tasks.classification import class_header, log_probabilities, top_class_values

FRAMEWISE_METRICS = ("accuracy", "f1_macro", "edit", "f1_at_10", "f1_at_25", "f1_at_50")
"""Frame accuracy and F1, segmental edit score, F1@{10,25,50}."""


class FramewiseTask:
    """Frame targets (B, T) against logits (B, T, K); data.subtask framewise. Predictions are written per frame."""

    name = "framewise"
    classifies = True
    per_frame = True
    dense = False
    predicts_images = False
    target_field = TARGETS
    multilabel = False
    probabilities_text = "softmax"

    def __init__(self, num_classes: int) -> None:
        self.num_outputs = num_classes

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.framewise import FramewiseMetrics

        return FramewiseMetrics(self.num_outputs, device)

    def metric_names(self) -> list[str]:
        return [*FRAMEWISE_METRICS, *(f"f1_class_{i}" for i in range(self.num_outputs))]

    def default_best_metric(self) -> str:
        return "val_accuracy"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return class_header(class_names)

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        return top_class_values(values, class_names)

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return log_probabilities(probabilities)

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        raise ValueError(f"{where}: a framewise run reads its labels per frame, not one label per sample.")

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        return []  # the labels are per frame; their classes are counted by the framewise metrics
