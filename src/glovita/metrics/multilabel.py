"""Multilabel metrics: macro AUROC (over labels where it is defined), mean average precision (over labels with
positives), macro F1 at 0.5 (over labels that occur or are predicted), per-label AUROC (NaN where a label's
targets are all one class)."""

from pathlib import Path

import torch
from torchmetrics.classification import (
    MultilabelAUROC,
    MultilabelAveragePrecision,
    MultilabelF1Score,
    MultilabelStatScores,
)

from glovita.metrics import undefined_classes_reported
from glovita.metrics.base import TestPlots


class MultilabelMetrics:
    """Accumulates logits (B, K) and multi-hot targets (B, K); compute() returns the keys its task lists."""

    def __init__(self, num_labels: int, device: torch.device) -> None:
        self.metrics = {
            "counts": MultilabelStatScores(num_labels, average=None),  # per label: tp, fp, tn, fn, positives
            "auroc": MultilabelAUROC(num_labels, average=None),
            "map": MultilabelAveragePrecision(num_labels, average=None),
            "f1": MultilabelF1Score(num_labels, average=None),
        }
        for metric in self.metrics.values():
            metric.to(device)

    def track_curves(self) -> None:
        """Multilabel runs keep no curves for the test pass."""

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        return []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        probabilities, labels = outputs.float().sigmoid(), targets.long()
        for metric in self.metrics.values():
            metric.update(probabilities, labels)

    def compute(self) -> dict[str, float]:
        # AUROC is undefined for a label whose targets are all 0 or all 1 (common in small validation sets),
        # average precision for a label without positives, F1 for a label neither present nor predicted
        # (0 / 0): such labels report NaN and stay out of the means instead of counting as 0.
        with undefined_classes_reported():
            per_label = self.metrics["auroc"].compute().float().cpu()
            precision = self.metrics["map"].compute().float().cpu()
        f1 = self.metrics["f1"].compute().float().cpu()
        counts = self.metrics["counts"].compute().cpu()  # summed over processes, like the metrics themselves
        true_pos, false_pos, false_neg, positives = counts[:, 0], counts[:, 1], counts[:, 3], counts[:, 4]
        samples = counts[0, :4].sum()
        has_positives = positives > 0
        f1_defined = (2 * true_pos + false_pos + false_neg) > 0
        defined = has_positives & (positives < samples)
        per_label = torch.where(defined, per_label, torch.full_like(per_label, float("nan")))
        values = {
            "auroc": float(per_label[defined].mean()) if defined.any() else float("nan"),
            "map": float(precision[has_positives].mean()) if has_positives.any() else float("nan"),
            "f1_macro": float(f1[f1_defined].mean()) if f1_defined.any() else float("nan"),
        }
        values.update({f"auroc_class_{i}": float(v) for i, v in enumerate(per_label)})
        return values

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
