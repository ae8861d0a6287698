"""Identity encoder for precomputed features, so heads, PEFT and the trainer work unchanged; optionally it
standardises each dimension with statistics of the training split, kept as buffers in every checkpoint."""

import torch
from torch import nn


class PrecomputedEncoder(nn.Module):
    """features (B, D) or bags (B, N, D) -> the same tensor (standardised when `standardize`); out_dim = D."""

    def __init__(self, feature_dim: int, standardize: bool = False) -> None:
        super().__init__()
        self.out_dim = feature_dim
        self.preprocessing = None
        self.standardize = standardize
        self.feature_mean: torch.Tensor
        self.feature_std: torch.Tensor
        if standardize:  # buffers only then, so checkpoints of runs without standardisation load unchanged
            self.register_buffer("feature_mean", torch.zeros(feature_dim))
            self.register_buffer("feature_std", torch.ones(feature_dim))

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use the training split's per-dimension mean and standard deviation (D,) from now on."""
        if not self.standardize:
            raise RuntimeError("set_statistics on a PrecomputedEncoder built with standardize=False (a glovita bug).")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """The stored features (standardised when `standardize`)."""
        return self.forward(features)

    def forward_frames(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame features (B, T, D) stored as a bag per video (glovita_extract_features on a framewise run)."""
        return self.forward(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.out_dim:
            raise ValueError(
                f"model.encoder.feature_dim={self.out_dim} but the features have dim {features.shape[-1]}. "
                f"Set --model.encoder.feature_dim {features.shape[-1]}."
            )
        if self.standardize:
            return (features - self.feature_mean) / self.feature_std
        return features
