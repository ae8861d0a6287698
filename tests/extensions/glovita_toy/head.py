"""The toy head: a linear regressor that owns an L1 loss, reading its targets from the batch it is given."""

from typing import Any

import torch
from torch import nn

from glovita.runtime.batch import Batch
from glovita_toy.config import ToyL1HeadConfig


class ToyL1Head(nn.Module):
    consumes = "vector"

    def __init__(self, in_dim: int, num_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def loss(self, outputs: Any, batch: Batch) -> torch.Tensor:
        return (outputs.float() - batch.targets.float()).abs().mean()

    def logits(self, outputs: Any) -> torch.Tensor:
        return outputs

    def predict(self, outputs: Any) -> torch.Tensor:
        return outputs


def build_toy_l1(cfg: ToyL1HeadConfig, in_dim: int, num_outputs: int) -> ToyL1Head:
    return ToyL1Head(in_dim, num_outputs)
