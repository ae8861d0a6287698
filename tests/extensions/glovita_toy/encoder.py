"""The toy encoder: a two-layer perceptron over a signal."""

import torch
from torch import nn

from glovita_toy.config import ToyMlpEncoderConfig


class ToyMlpEncoder(nn.Module):
    preprocessing = None

    def __init__(self, length: int, width: int) -> None:
        super().__init__()
        self.out_dim = width
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(length, width), nn.ReLU(), nn.Linear(width, width))

    def forward_features(self, signals: torch.Tensor) -> torch.Tensor:
        return self.net(signals)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.forward_features(signals)


def build_toy_mlp(cfg: ToyMlpEncoderConfig) -> ToyMlpEncoder:
    return ToyMlpEncoder(cfg.length, cfg.width)
