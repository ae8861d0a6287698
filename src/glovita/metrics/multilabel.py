"""Multilabel metrics: macro AUROC (over labels where it is defined), mean average precision, macro F1 at 0.5,
per-label AUROC (NaN where a label's targets are all one class)."""

import torch
from torchmetrics.classification import MultilabelAUROC, MultilabelAveragePrecision, MultilabelF1Score


class MultilabelMetrics:
    """Accumulates logits (B, K) and multi-hot targets (B, K); compute() returns the keys of metrics/keys.py."""

    def __init__(self, num_labels: int, device: torch.device) -> None:
        self.positives = torch.zeros(num_labels, dtype=torch.long, device=device)
        self.count = 0
        self.metrics = {
            "auroc": MultilabelAUROC(num_labels, average=None),
            "map": MultilabelAveragePrecision(num_labels, average="macro"),
            "f1_macro": MultilabelF1Score(num_labels, average="macro"),
        }
        for metric in self.metrics.values():
            metric.to(device)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        probabilities, labels = outputs.float().sigmoid(), targets.long()
        self.positives += labels.sum(0)
        self.count += labels.shape[0]
        for metric in self.metrics.values():
            metric.update(probabilities, labels)

    def compute(self) -> dict[str, float]:
        # AUROC is undefined for a label whose targets are all 0 or all 1 (common in small validation sets):
        # such labels report NaN and stay out of the macro mean instead of counting as 0.
        per_label = self.metrics["auroc"].compute().float().cpu()
        defined = ((self.positives > 0) & (self.positives < self.count)).cpu()
        per_label = torch.where(defined, per_label, torch.full_like(per_label, float("nan")))
        values = {
            "auroc": float(per_label[defined].mean()) if defined.any() else float("nan"),
            "map": float(self.metrics["map"].compute()),
            "f1_macro": float(self.metrics["f1_macro"].compute()),
        }
        values.update({f"auroc_class_{i}": float(v) for i, v in enumerate(per_label)})
        return values

    def reset(self) -> None:
        self.positives.zero_()
        self.count = 0
        for metric in self.metrics.values():
            metric.reset()
