"""Multiclass metrics: accuracy, balanced accuracy, macro F1, macro AUROC, ECE, per-class F1/AUROC, confusion matrix."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassROC,
)

from glovita.metrics import undefined_classes_reported
from glovita.metrics.base import Miss, TestPlots
from glovita.metrics.calibration import ReliabilityBins

_ROC_THRESHOLDS = 51
"""Thresholds of the one-vs-rest ROC curves (binned: constant memory, for the run report)."""


@dataclass(frozen=True)
class _Gathered:
    """What compute() collected from every process for the test pass's files."""

    confusion: torch.Tensor
    reliability: dict[str, list[float]]
    ece: float
    roc: dict[str, dict[str, list[float]]]


class ClassificationMetrics:
    """Accumulates logits (B, K) and class indices (B,); compute() returns the keys its task lists (glovita/tasks/)."""

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
        self.per_sample: list[torch.Tensor] | None = None
        """With track_curves(): (B, 4) rows of (true class, predicted class, probability of the true class, of the
        predicted class) per batch, in evaluation order, for misses()."""

    def track_curves(self) -> None:
        """Also accumulate the one-vs-rest ROC curves and each sample's outcome (the test pass; validation epochs
        do without)."""
        self.metrics["roc"] = MulticlassROC(self.num_classes, thresholds=_ROC_THRESHOLDS).to(self.device)
        self.per_sample = []

    def misses(self, count: int, class_names: list[str]) -> list[Miss]:
        """The `count` misclassified samples of this process with the lowest probability of their true class."""
        if not self.per_sample:
            return []
        rows = torch.cat(self.per_sample)
        wrong = torch.nonzero(rows[:, 0] != rows[:, 1]).flatten()
        worst = wrong[torch.argsort(rows[wrong, 2], stable=True)][:count]

        def name(index: float) -> str:
            k = int(index)
            return class_names[k] if k < len(class_names) else str(k)

        found = []
        for position in worst.tolist():
            truth, predicted, p_true, p_top = rows[position].tolist()
            found.append(Miss(position, name(truth), f"{name(predicted)} (p={p_top:.2f})", 1.0 - p_true))
        return found

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        """test_roc.json (classes with positives and negatives), test_confusion.json (counts, rows = true class),
        confusion_matrix.png, reliability_diagram.png, from
        what compute() gathered (rank 0 alone writes; the gathering took every process)."""
        from glovita.metrics.plots import save_confusion_matrix, save_reliability_diagram
        from glovita.runtime.io import save_json

        if self.gathered.roc:
            save_json(self.gathered.roc, run_dir / "test_roc.json")
        counts = self.gathered.confusion.tolist()
        save_json({"class_names": class_names, "counts": counts}, run_dir / "test_confusion.json")
        written = []
        if plots.confusion_matrix:
            written.append(run_dir / "confusion_matrix.png")
            save_confusion_matrix(self.gathered.confusion.numpy(), class_names, written[-1], title)
        if plots.reliability_diagram:
            written.append(run_dir / "reliability_diagram.png")
            save_reliability_diagram(self.gathered.reliability, self.gathered.ece, written[-1], title)
        return written

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        probabilities = outputs.float().softmax(dim=-1)
        for metric in self.metrics.values():
            metric.update(probabilities, targets)
        if self.per_sample is not None:
            p_true = probabilities.gather(1, targets.long().reshape(-1, 1)).flatten()
            p_top, top = probabilities.max(dim=1)
            rows = torch.stack([targets.float(), top.float(), p_true, p_top], dim=1)
            self.per_sample.append(rows.cpu())

    def compute(self) -> dict[str, float]:
        """Macro metrics average over the classes present in the evaluated split: a class without samples has
        no recall, F1 or AUROC (NaN per class) instead of a 0 that would drag the mean down. Also gathers (on every
        process under torchrun) the confusion matrix, reliability bins and tracked ROC curves for the test pass."""
        with undefined_classes_reported():
            values = self._compute()
        roc = self.roc_curves() if "roc" in self.metrics else {}
        self.gathered = _Gathered(self.confusion_matrix(), self.reliability(), values["ece"], roc)
        return values

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
