"""Regression metrics: MAE, MSE, R2 and Pearson correlation (averaged over outputs)."""

from pathlib import Path

import torch
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, R2Score

from glovita.metrics.base import Miss, TestPlots


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
        self.per_sample: list[torch.Tensor] | None = None
        """With track_curves(): (B, 2K) rows of (targets, predictions) per batch, in evaluation order."""

    def track_curves(self) -> None:
        """Regression runs keep no curves, only each sample's prediction for misses()."""
        self.per_sample = []

    def misses(self, count: int, class_names: list[str]) -> list[Miss]:
        """The `count` samples of this process with the largest mean absolute error."""
        if not self.per_sample:
            return []
        rows = torch.cat(self.per_sample)
        truth, predicted = rows[:, : self.num_outputs], rows[:, self.num_outputs :]
        errors = (predicted - truth).abs().mean(dim=1)
        worst = torch.argsort(errors, descending=True, stable=True)[:count]

        def text(values: torch.Tensor) -> str:
            return ", ".join(f"{v:.4g}" for v in values.tolist())

        return [Miss(int(i), text(truth[i]), text(predicted[i]), float(errors[i])) for i in worst.tolist()]

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        return []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        outputs, targets = outputs.float(), targets.float()
        if self.per_sample is not None:
            width = self.num_outputs
            self.per_sample.append(torch.cat([targets.reshape(-1, width), outputs.reshape(-1, width)], dim=1).cpu())
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
