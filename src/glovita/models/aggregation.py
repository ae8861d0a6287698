"""Pooling of encoder outputs (tokens or feature maps) into one vector per sample."""

import torch

TOKEN_ONLY_METHODS = ("cls_token", "joint")


def to_tokens(features: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, N, D) tokens from (B, N, D), (B, D, H, W) or channels-last (B, H, W, D) outputs."""
    if features.ndim == 3:
        return features
    if features.ndim == 4:
        if features.shape[1] == dim:
            return features.flatten(2).transpose(1, 2)
        if features.shape[-1] == dim:
            return features.flatten(1, 2)
    raise ValueError(f"Cannot pool encoder output of shape {tuple(features.shape)} with feature dim {dim}.")


def aggregate(features: torch.Tensor, method: str, num_prefix_tokens: int, dim: int) -> torch.Tensor:
    """Pool encoder output to (B, D) (or (B, 2D) for joint).

    cls_token: the first token; avg / sum: mean / sum of patch tokens; mean_all: mean of all tokens, prefix tokens
    included; joint: the class token concatenated with the patch-token mean.
    """
    tokens = to_tokens(features, dim)
    patches = tokens[:, num_prefix_tokens:]
    if method == "cls_token":
        return tokens[:, 0]
    if method == "avg":
        return patches.mean(dim=1)
    if method == "sum":
        return patches.sum(dim=1)
    if method == "mean_all":
        return tokens.mean(dim=1)
    if method == "joint":
        return torch.cat([tokens[:, 0], patches.mean(dim=1)], dim=-1)
    raise ValueError(f"model.feature_aggregation_method={method!r} is unknown.")
