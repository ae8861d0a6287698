"""Single-label classification: one class per sample, softmax over K classes."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import TARGETS
from glovita.tasks.base import Target

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "ece")


def parse_class(raw: str, class_names: list[str], where: str) -> int:
    """A class name or index < len(class_names); anything else names `where` and the choices."""
    text = raw.strip()
    if text in class_names:
        return class_names.index(text)
    try:
        index = int(text)
    except ValueError:
        index = -1
    if 0 <= index < len(class_names):
        return index
    expected = f"one of {', '.join(class_names[:10])} or an index < {len(class_names)}"
    raise ValueError(f"{where}: label {raw!r} is not {expected}.")


def class_header(class_names: list[str]) -> list[str]:
    """predictions.csv columns of a classifying task: the predicted label, then a probability per class."""
    return ["prediction_label", *(f"prob_{name}" for name in class_names)]


def top_class_values(values: list[float], class_names: list[str]) -> list[object]:
    """The most probable class's name, then every probability."""
    return [class_names[max(range(len(values)), key=values.__getitem__)], *(f"{v:.6g}" for v in values)]


def log_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax gives `probabilities` back (averaged test-time augmentation)."""
    return probabilities.clamp_min(1e-12).log()


class ClassificationTask:
    """Class indices (B,) against logits (B, K); data.task Classification, data.subtask multiclass."""

    name = "multiclass"
    classifies = True
    per_frame = False
    dense = False
    predicts_images = False
    target_field = TARGETS
    multilabel = False
    probabilities_text = "softmax"

    def __init__(self, num_classes: int) -> None:
        self.num_outputs = num_classes

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.classification import ClassificationMetrics

        return ClassificationMetrics(self.num_outputs, device)

    def metric_names(self) -> list[str]:
        per_class = [f"{kind}_class_{i}" for kind in ("f1", "auroc") for i in range(self.num_outputs)]
        return [*CLASSIFICATION_METRICS, *per_class]

    def default_best_metric(self) -> str:
        return "val_accuracy"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return class_header(class_names)

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        return top_class_values(values, class_names)

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return log_probabilities(probabilities)

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        return parse_class(raw, class_names, where)

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        present = {int(t) for t in targets}  # type: ignore[attr-defined]
        return [name for k, name in enumerate(class_names) if k not in present]
