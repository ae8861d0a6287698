"""Regression head: (optional MLP) linear regressor with an MSE, L1 or smooth-L1 loss."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.models.heads.classification import mlp
from glovita.runtime.batch import Batch

_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class RegressionHead(nn.Module):
    """features (B, D) -> values (B, K)."""

    consumes: Literal["vector"] = "vector"

    def __init__(self, in_dim: int, num_outputs: int, dropout: float, hidden_dim: int | None, loss: str) -> None:
        super().__init__()
        self.net = mlp(in_dim, num_outputs, dropout, hidden_dim)
        self.loss_fn = _LOSSES[loss]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Loss against targets (B, K)."""
        return self.loss_fn(outputs.float(), batch.targets.float())

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The regression values (B, K)."""
        return outputs.float()

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs
