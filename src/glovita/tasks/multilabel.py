"""Multilabel classification: K independent labels per sample (multi-hot targets), a sigmoid per label."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import TARGETS
from glovita.tasks.base import Target
from glovita.tasks.classification import class_header, parse_class

MULTILABEL_METRICS = ("auroc", "map", "f1_macro")


class MultilabelTask:
    """Multi-hot targets (B, K) against logits (B, K); data.subtask multilabel."""

    name = "multilabel"
    classifies = True
    per_frame = False
    dense = False
    predicts_images = False
    target_field = TARGETS
    multilabel = True
    probabilities_text = "sigmoid (per class)"

    def __init__(self, num_labels: int) -> None:
        self.num_outputs = num_labels

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.multilabel import MultilabelMetrics

        return MultilabelMetrics(self.num_outputs, device)

    def metric_names(self) -> list[str]:
        return [*MULTILABEL_METRICS, *(f"auroc_class_{i}" for i in range(self.num_outputs))]

    def default_best_metric(self) -> str:
        return "val_auroc"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return class_header(class_names)

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        labels = "|".join(name for name, p in zip(class_names, values, strict=True) if p >= 0.5)
        return [labels, *(f"{v:.6g}" for v in values)]

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return torch.logit(probabilities.clamp(1e-7, 1 - 1e-7))

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        return parse_class(raw, class_names, where)

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        present = {int(k) for k in torch.as_tensor(targets).any(0).nonzero()}  # multi-hot rows
        return [name for k, name in enumerate(class_names) if k not in present]
