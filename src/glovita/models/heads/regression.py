"""Regression head: (optional MLP) linear regressor with an MSE, L1 or smooth-L1 loss."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.models.heads.classification import mlp
from glovita.runtime.batch import Batch

_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class RegressionHead(nn.Module):
    """features (B, D) -> values (B, K) = target_mean + target_std x the regressor's output: the regressor learns
    standardised targets (set_target_statistics; mean 0 and std 1 leave the targets as they are) and its loss is
    taken in those standard units."""

    consumes: Literal["vector"] = "vector"

    def __init__(self, in_dim: int, num_outputs: int, dropout: float, hidden_dim: int | None, loss: str) -> None:
        super().__init__()
        self.net = mlp(in_dim, num_outputs, dropout, hidden_dim)
        self.loss_fn = _LOSSES[loss]
        self.target_mean: torch.Tensor
        self.target_std: torch.Tensor
        self.register_buffer("target_mean", torch.zeros(num_outputs))
        self.register_buffer("target_std", torch.ones(num_outputs))

    def set_target_statistics(self, mean: list[float], std: list[float]) -> None:
        """The training targets' mean and std per output (the run computes them once; checkpoints keep them)."""
        self.target_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.target_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        """Checkpoints written before the statistics existed load as unstandardised (mean 0, std 1)."""
        state_dict.setdefault(prefix + "target_mean", torch.zeros_like(self.target_mean))
        state_dict.setdefault(prefix + "target_std", torch.ones_like(self.target_std))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[arg-type]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features) * self.target_std + self.target_mean

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Loss against targets (B, K), both in standard units."""
        mean, std = self.target_mean.float(), self.target_std.float()
        return self.loss_fn((outputs.float() - mean) / std, (batch.targets.float() - mean) / std)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The regression values (B, K)."""
        return outputs.float()

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs
