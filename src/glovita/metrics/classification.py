"""Multiclass metrics: accuracy, balanced accuracy, macro F1, macro AUROC, ECE, per-class F1/AUROC, confusion matrix."""

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassROC,
)

from glovita.metrics import undefined_classes_reported
from glovita.metrics.calibration import ReliabilityBins

_ROC_THRESHOLDS = 51
"""Thresholds of the one-vs-rest ROC curves (binned: constant memory, for the run report)."""


class ClassificationMetrics:
    """Accumulates logits (B, K) and class indices (B,); compute() returns the keys of metrics/keys.py."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        self.metrics = {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "balanced_accuracy": MulticlassAccuracy(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="none"),
            "auroc": MulticlassAUROC(num_classes, average="none"),
            "confusion": MulticlassConfusionMatrix(num_classes),
            "calibration": ReliabilityBins(),
        }
        for metric in self.metrics.values():
            metric.to(device)
        self.device = device

    def track_curves(self) -> None:
        """Also accumulate the one-vs-rest ROC curves (the test pass; validation epochs do without)."""
        self.metrics["roc"] = MulticlassROC(self.num_classes, thresholds=_ROC_THRESHOLDS).to(self.device)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        probabilities = outputs.float().softmax(dim=-1)
        for metric in self.metrics.values():
            metric.update(probabilities, targets)

    def compute(self) -> dict[str, float]:
        """Macro metrics average over the classes present in the evaluated split: a class without samples has
        no recall, F1 or AUROC (NaN per class) instead of a 0 that would drag the mean down."""
        with undefined_classes_reported():
            return self._compute()

    def _compute(self) -> dict[str, float]:
        support = self.metrics["confusion"].compute().sum(dim=1).cpu()
        present = support > 0
        nan = float("nan")
        balanced = float(self.metrics["balanced_accuracy"].compute())
        if not present.all():
            recall = self.metrics["confusion"].compute().diagonal().cpu().double() / support.clamp(min=1)
            balanced = float(recall[present].mean()) if present.any() else nan
        values = {"accuracy": float(self.metrics["accuracy"].compute()), "balanced_accuracy": balanced}
        f1 = torch.where(present, self.metrics["f1"].compute().float().cpu(), nan)
        # One-vs-rest AUROC needs positives and negatives of the class.
        defined = present & (support < support.sum())
        auroc = torch.where(defined, self.metrics["auroc"].compute().float().cpu(), nan)
        values["f1_macro"] = float(f1[present].mean()) if present.any() else nan
        values["auroc"] = float(auroc[defined].mean()) if defined.any() else nan
        values["ece"] = float(self.metrics["calibration"].compute())
        values.update({f"f1_class_{i}": float(v) for i, v in enumerate(f1)})
        values.update({f"auroc_class_{i}": float(v) for i, v in enumerate(auroc)})
        return values

    def confusion_matrix(self) -> torch.Tensor:
        """(K, K) counts, rows = true class, columns = predicted class."""
        return self.metrics["confusion"].compute().cpu()

    def roc_curves(self) -> dict[str, dict[str, list[float]]]:
        """One-vs-rest ROC curve per class with positives and negatives: {class index: {fpr, tpr}} (after
        track_curves())."""
        with undefined_classes_reported():
            fpr, tpr, _ = self.metrics["roc"].compute()
        support = self.metrics["confusion"].compute().sum(dim=1).cpu()
        defined = (support > 0) & (support < support.sum())
        return {
            str(k): {"fpr": [round(float(v), 5) for v in fpr[k]], "tpr": [round(float(v), 5) for v in tpr[k]]}
            for k in range(self.num_classes)
            if defined[k]
        }

    def reliability(self) -> dict[str, list[float]]:
        """Reliability-diagram bins of the top-1 confidence (after compute(), synced across processes)."""
        metric = self.metrics["calibration"]
        assert isinstance(metric, ReliabilityBins)
        with metric.sync_context():
            return metric.bins()

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
