"""The assembled model: encoder -> head, with the interfaces every component satisfies."""

from typing import Protocol

import torch
from torch import nn


class ImgEncoder(Protocol):
    """images (B, C, H, W) -> features (B, out_dim)."""

    out_dim: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class Head(Protocol):
    """features (B, D), or bags (B, N, D) with a mask, -> outputs; owns its loss and turns outputs into
    logits (B, K) for metrics and predictions."""

    def __call__(self, features: torch.Tensor) -> torch.Tensor: ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def predict(self, outputs: torch.Tensor) -> torch.Tensor: ...

    def logits(self, outputs: torch.Tensor) -> torch.Tensor: ...


class GlovitaModel(nn.Module):
    """Encoder followed by head. A frozen encoder stays in eval mode (BatchNorm statistics unchanged)."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.encoder_frozen = False
        self.frozen_norms: list[str] = []
        """Names of normalisation layers that stay in eval mode (their statistics are frozen)."""

    def forward(self, inputs: torch.Tensor | dict[str, torch.Tensor]):
        """images (B, C, H, W) or features (B, D) -> outputs (B, K); bags {features (B, N, D), mask (B, N)}
        -> the bag head's structured output."""
        if isinstance(inputs, dict):
            return self.head(self.encoder(inputs["features"]), inputs["mask"])
        return self.head(self.encoder(inputs))

    def train(self, mode: bool = True) -> "GlovitaModel":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        for name in self.frozen_norms:
            self.get_submodule(name).eval()
        return self
