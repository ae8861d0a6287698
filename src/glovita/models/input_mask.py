"""Masked classification: a frozen trained segmenter in front of the encoder blanks each image's background."""

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn


class InputMask(nn.Module):
    """Multiplies images by their foreground probability (soft) or thresholded mask (hard) from a frozen segmenter.

    The model receives images normalised with the classifier's statistics; the mask applies to the un-normalised
    image, so the background becomes black (0) rather than the dataset mean, and the result is normalised again.
    The segmenter sees the whole image resized (bilinear) to its own training size and normalised with its own
    statistics; its foreground probability (1 - P(class 0)) is resized back to the image's size.

    Args:
        segmenter: a model whose head gives per-pixel class logits (B, K, h, w) through `head.logits`.
        size: (height, width) the segmenter was trained at.
        segmenter_stats: its (mean, std) per channel; input_stats: the classifier's.
    """

    def __init__(
        self,
        segmenter: nn.Module,
        mode: Literal["soft", "hard"],
        threshold: float,
        size: tuple[int, int],
        segmenter_stats: tuple[list[float], list[float]],
        input_stats: tuple[list[float], list[float]],
    ) -> None:
        super().__init__()
        self.segmenter = segmenter.requires_grad_(False).eval()
        self.segmenter_mean: torch.Tensor
        self.segmenter_std: torch.Tensor
        self.input_mean: torch.Tensor
        self.input_std: torch.Tensor
        self.mode = mode
        self.threshold = threshold
        self.size = size

        def stats(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)

        # Not persistent: they come from the runs' records, and the checkpoint holds only weights.
        self.register_buffer("segmenter_mean", stats(segmenter_stats[0]), persistent=False)
        self.register_buffer("segmenter_std", stats(segmenter_stats[1]), persistent=False)
        self.register_buffer("input_mean", stats(input_stats[0]), persistent=False)
        self.register_buffer("input_std", stats(input_stats[1]), persistent=False)

    def train(self, mode: bool = True) -> "InputMask":
        super().train(mode)
        self.segmenter.eval()  # frozen: BatchNorm statistics and dropout stay as trained
        return self

    def foreground(self, images: torch.Tensor) -> torch.Tensor:
        """Un-normalised images (B, C, H, W) in [0, 1] -> foreground probability (B, 1, H, W), or 0/1 (hard)."""
        with torch.no_grad():
            seen = F.interpolate(images.float(), size=self.size, mode="bilinear", align_corners=False)
            seen = (seen - self.segmenter_mean) / self.segmenter_std
            segmenter: Any = self.segmenter
            logits = segmenter.head.logits(segmenter(seen)).float()
            probability = 1 - torch.softmax(logits, dim=1)[:, :1]
            probability = F.interpolate(probability, size=images.shape[-2:], mode="bilinear", align_corners=False)
            if self.mode == "hard":
                probability = (probability > self.threshold).float()
        return probability.to(images.dtype)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, C, H, W) -> the same with the background blanked (B, C, H, W)."""
        images = inputs * self.input_std + self.input_mean
        masked = images * self.foreground(images)
        return (masked - self.input_mean) / self.input_std
