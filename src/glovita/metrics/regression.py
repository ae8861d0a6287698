"""Regression metrics: MAE, MSE, R2 and Pearson correlation (averaged over outputs)."""

from pathlib import Path

import torch
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, R2Score

from glovita.metrics.base import TestPlots


class RegressionMetrics:
    """Accumulates predictions and targets (B, K); compute() returns mae, mse, r2, pearson."""

    def __init__(self, num_outputs: int, device: torch.device) -> None:
        self.num_outputs = num_outputs
        self.metrics = {
            "mae": MeanAbsoluteError(),
            "mse": MeanSquaredError(),
            "r2": R2Score(multioutput="uniform_average"),
            "pearson": PearsonCorrCoef(num_outputs=num_outputs),
        }
        for metric in self.metrics.values():
            metric.to(device)

    def track_curves(self) -> None:
        """Regression runs keep no curves for the test pass."""

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        return []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs, targets = outputs.float(), targets.float()
        for name, metric in self.metrics.items():
            if name == "pearson" and self.num_outputs == 1:
                metric.update(outputs.reshape(-1), targets.reshape(-1))
            else:
                metric.update(outputs, targets)

    def compute(self) -> dict[str, float]:
        return {name: float(metric.compute().float().mean()) for name, metric in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
