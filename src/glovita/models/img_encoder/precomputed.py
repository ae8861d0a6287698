"""Identity encoder for precomputed features, so heads, PEFT and the trainer work unchanged."""

import torch
from torch import nn


class PrecomputedEncoder(nn.Module):
    """features (B, D) or bags (B, N, D) -> the same tensor; out_dim = D."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.out_dim = feature_dim
        self.preprocessing = None

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """The stored features unchanged."""
        return self.forward(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.out_dim:
            raise ValueError(
                f"model.encoder.feature_dim={self.out_dim} but the features have dim {features.shape[-1]}. "
                f"Set --model.encoder.feature_dim {features.shape[-1]}."
            )
        return features
