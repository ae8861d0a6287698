"""The Task interface: target field, metric set and keys, default best metric, and how predictions are written."""

from typing import Protocol

import torch

from glovita.metrics.base import MetricSet

Target = int | tuple[float, ...]
"""A label as read from a CSV or folder name: a class index, or regression values."""


class Task(Protocol):
    """What a head predicts and how it is scored, written and exported."""

    name: str
    """multiclass, multilabel, framewise, regression or segmentation (resolved_config.json, messages)."""
    num_outputs: int
    """Classes, labels or regression outputs (data.num_classes)."""
    classifies: bool
    """Outputs are class scores: predictions carry a label, folder names can label samples, splits are stratified."""
    per_frame: bool
    """Targets and predictions are per frame of a video (a sequence per sample, written per frame)."""
    multilabel: bool
    """Each output is an independent yes/no (sigmoid + binary cross-entropy)."""
    dense: bool
    """Targets and predictions are label maps over the input's pixels (predictions are written as files)."""
    predicts_images: bool
    """Dense predictions are images (a value per pixel and channel, a label-free task), not label maps."""
    target_field: str
    """The batch field the metrics read the targets from (TARGETS; LABEL_MAP for segmentation)."""
    probabilities_text: str
    """How logits become probabilities, for preprocessing.json of an export."""

    def build_metrics(self, device: torch.device) -> MetricSet:
        """A fresh metric set on `device` (torchmetrics is imported here, not before the first step)."""
        ...

    def metric_names(self) -> list[str]:
        """Metric keys without split prefix, per-class keys included."""
        ...

    def default_best_metric(self) -> str:
        """The validation key best.pt follows when training.best_checkpoint_metric is unset."""
        ...

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        """predictions.csv columns after id and target: the predicted label (when the task classifies) and one
        column per class or output."""
        ...

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        """One sample's predicted label (when the task classifies) and its probabilities or values."""
        ...

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Metric inputs from averaged probabilities (test-time augmentation): their activation gives them back."""
        ...

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        """A label cell of a CSV (class name, class index or numbers); a bad cell names `where`."""
        ...

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        """Classes (labels) of `class_names` without samples (positives) in a split's targets; [] where the
        question does not apply (regression, per-frame labels)."""
        ...
