"""Segmentation metrics from one pixel confusion matrix: IoU and Dice per class and their means over the classes
present (in the truth or the prediction), and pixel accuracy; pixels labelled ignore_index are left out."""

from pathlib import Path

import torch

from glovita.metrics.base import TestPlots


def scores_from_confusion(confusion: torch.Tensor) -> dict[str, float]:
    """miou, dice, pixel_accuracy and iou_class_k / dice_class_k from a (K, K) confusion matrix (rows: truth,
    columns: prediction). A class that is neither true nor predicted anywhere has NaN scores and is left out of the
    means."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    predicted = confusion.sum(dim=0)
    actual = confusion.sum(dim=1)
    union = predicted + actual - true_positive
    seen = union > 0
    nan = torch.full_like(true_positive, float("nan"))
    iou = torch.where(seen, true_positive / union.clamp_min(1), nan)
    dice = torch.where(seen, 2 * true_positive / (predicted + actual).clamp_min(1), nan)
    total = float(confusion.sum())
    values = {
        "miou": float(iou[seen].mean()) if bool(seen.any()) else float("nan"),
        "dice": float(dice[seen].mean()) if bool(seen.any()) else float("nan"),
        "pixel_accuracy": float(true_positive.sum()) / total if total else float("nan"),
    }
    values.update({f"iou_class_{k}": float(v) for k, v in enumerate(iou)})
    values.update({f"dice_class_{k}": float(v) for k, v in enumerate(dice)})
    return values


def image_confusion(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(K, K) pixel counts of one or more label maps (rows: truth, columns: prediction), ignored pixels left out."""
    keep = truth != ignore_index
    pairs = truth[keep].long() * num_classes + predicted[keep].long()
    return torch.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class SegmentationMetrics:
    """Accumulates the pixel confusion matrix of logits (B, K, H, W) against label maps (B, H, W) with torchmetrics
    (summed over torchrun processes in compute())."""

    def __init__(self, num_classes: int, ignore_index: int, device: torch.device) -> None:
        from torchmetrics.classification import MulticlassConfusionMatrix

        self.confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index).to(device)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.confusion.update(outputs.argmax(dim=1), targets.long())

    def compute(self) -> dict[str, float]:
        return scores_from_confusion(self.confusion.compute())

    def track_curves(self) -> None:
        """Segmentation keeps no curves."""

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        return []
