"""Label-free prediction: an image from an image (e.g. a fluorescence channel from a bright-field one), scored by
PSNR, SSIM, MAE and MSE against the target image."""

import torch

from glovita.metrics.base import MetricSet
from glovita.runtime.batch import TARGET_IMAGE
from glovita.tasks.base import Target

LABELFREE_METRICS = ("psnr", "ssim", "mae", "mse")


class LabelFreeTask:
    """Target images (B, C, H, W) in [0, 1] against predicted images (B, C, H, W); data.task LabelFree. A dense
    head predicts them; its loss is the mean squared (or absolute) error."""

    name = "labelfree"
    classifies = False
    per_frame = False
    multilabel = False
    dense = True
    predicts_images = True
    target_field = TARGET_IMAGE
    probabilities_text = "predicted image values (B, C, H, W), clipped to [0, 1] when saved and scored"

    def __init__(self, channels: int) -> None:
        self.num_outputs = channels

    def build_metrics(self, device: torch.device) -> MetricSet:
        from glovita.metrics.image_to_image import ImageToImageMetrics

        return ImageToImageMetrics(device)

    def metric_names(self) -> list[str]:
        return list(LABELFREE_METRICS)

    def default_best_metric(self) -> str:
        return "val_psnr"

    def prediction_header(self, class_names: list[str], num_outputs: int) -> list[str]:
        return ["image_file"]

    def prediction_values(self, values: list[float], class_names: list[str]) -> list[object]:
        raise TypeError("Label-free predictions are images; they are written as files.")

    def scores_from_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities

    def parse_label(self, raw: str, class_names: list[str], where: str) -> Target:
        raise ValueError(f"{where}: a label-free run reads target images (data.targets_dir), not a label per image.")

    def absent_classes(self, targets: object, class_names: list[str]) -> list[str]:
        return []
