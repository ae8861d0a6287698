"""Label-free (image-to-image) metrics: PSNR and SSIM (torchmetrics, data range 1), MAE and MSE of predicted images
(B, C, H, W) or volumes (B, C, D, H, W) clipped to [0, 1] (as they are saved) against their targets in [0, 1]."""

from pathlib import Path
from typing import cast

import torch

from glovita.metrics.base import TestPlots


class ImageToImageMetrics:
    """Means over the evaluated images (every image weighs the same; summed over torchrun processes)."""

    def __init__(self, device: torch.device) -> None:
        from torchmetrics import MeanMetric
        from torchmetrics.image import StructuralSimilarityIndexMeasure

        self.psnr = MeanMetric().to(device)
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0).to(device)
        self.mae = MeanMetric().to(device)
        self.mse = MeanMetric().to(device)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        from torchmetrics.functional.image import peak_signal_noise_ratio

        predicted = outputs.float().clamp(0.0, 1.0)
        targets = targets.float()
        every_value = tuple(range(1, predicted.dim()))  # one PSNR per image or volume
        self.psnr.update(peak_signal_noise_ratio(predicted, targets, data_range=1.0, reduction="none", dim=every_value))
        self.ssim.update(predicted, targets)
        self.mae.update((predicted - targets).abs().flatten(1).mean(dim=1))
        self.mse.update((predicted - targets).square().flatten(1).mean(dim=1))

    def compute(self) -> dict[str, float]:
        return {
            "psnr": float(self.psnr.compute()),
            "ssim": float(cast(torch.Tensor, self.ssim.compute())),
            "mae": float(self.mae.compute()),
            "mse": float(self.mse.compute()),
        }

    def track_curves(self) -> None:
        """Label-free runs keep no curves."""

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        return []
