"""Semantic segmentation: a class per pixel from a label map, scored by IoU and Dice."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import LABEL_MAP
from glovita.tasks.base import Target

SEGMENTATION_METRICS = ("miou", "dice", "pixel_accuracy")


class SegmentationTask:
    """Label maps (B, H, W) against logits (B, K, H, W); data.task Segmentation. Pixels labelled ignore_index count
    nowhere. Predictions are label maps written as files (glovita_infer), one row per image in predictions.csv."""

    name = "segmentation"
    classifies = False
    per_frame = False
    multilabel = False
    dense = True
    predicts_images = False
    target_field = LABEL_MAP
    probabilities_text = "softmax over the class axis (dim 1) of (B, K, H, W)"

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_outputs = num_classes
        self.ignore_index = ignore_index

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.segmentation import SegmentationMetrics

        return SegmentationMetrics(self.num_outputs, self.ignore_index, device)

    def metric_names(self) -> list[str]:
        per_class = [f"{kind}_class_{k}" for kind in ("iou", "dice") for k in range(self.num_outputs)]
        return [*SEGMENTATION_METRICS, *per_class]

    def default_best_metric(self) -> str:
        return "val_miou"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return ["mask_file"]

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        raise TypeError("Segmentation predictions are label maps; glovita_infer writes them as files.")

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities.clamp_min(1e-12).log()

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        raise ValueError(f"{where}: a segmentation run reads label maps (data.masks_dir), not a label per image.")

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        return []  # the classes are counted per pixel by the metrics
