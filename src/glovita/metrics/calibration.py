"""Calibration: expected calibration error (ECE) and the bins of a reliability diagram.

A torchmetrics Metric with summed per-bin states, so it accumulates in constant memory and reduces across
processes like every other metric. Equal-width confidence bins, top-1 confidence, L1 gap (the usual ECE).
"""

import torch
from torchmetrics import Metric

NUM_BINS = 15


class ReliabilityBins(Metric):
    """Per confidence bin: sample count, summed top-1 confidence, number correct."""

    count: torch.Tensor
    confidence: torch.Tensor
    correct: torch.Tensor

    full_state_update = False

    def __init__(self, num_bins: int = NUM_BINS) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.add_state("count", default=torch.zeros(num_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("confidence", default=torch.zeros(num_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct", default=torch.zeros(num_bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        confidence, predicted = probabilities.max(dim=-1)
        # Bin b holds confidences in (b/n, (b+1)/n]; torchmetrics' binning agrees.
        bins = (torch.ceil(confidence.double() * self.num_bins) - 1).clamp(0, self.num_bins - 1).long()
        ones = torch.ones_like(confidence, dtype=torch.float64)
        self.count.index_add_(0, bins, ones)
        self.confidence.index_add_(0, bins, confidence.double())
        self.correct.index_add_(0, bins, (predicted == targets).double())

    def compute(self) -> torch.Tensor:
        """Expected calibration error: sum over bins of (bin share) x |accuracy - mean confidence|."""
        total = self.count.sum().clamp(min=1)
        gap = (self.correct - self.confidence).abs()
        return (gap / total).sum().float()

    def bins(self) -> dict[str, list[float]]:
        """What a reliability diagram shows (accuracy and confidence are NaN in empty bins)."""
        count = self.count
        nonempty = count.clamp(min=1)
        empty = count == 0
        accuracy = torch.where(empty, torch.nan, self.correct / nonempty)
        confidence = torch.where(empty, torch.nan, self.confidence / nonempty)
        return {"count": count.tolist(), "accuracy": accuracy.tolist(), "confidence": confidence.tolist()}
