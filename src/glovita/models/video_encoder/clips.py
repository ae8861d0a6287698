"""What every video encoder shares: K evaluation clips of a video are encoded and their features averaged."""

from collections.abc import Callable

import torch
from torch import nn


def over_clips(encode: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor) -> torch.Tensor:
    """clips (B, C, T, H, W) -> encode(clips); (B, K, C, T, H, W) -> the mean of the K clips' features (for a
    linear head the same as averaging the clips' logits)."""
    if clips.ndim == 5:
        return encode(clips)
    if clips.ndim != 6:
        raise ValueError(
            f"A video encoder takes clips (B, C, T, H, W) or (B, K, C, T, H, W), not {tuple(clips.shape)}."
        )
    batch, count = clips.shape[:2]
    features = encode(clips.flatten(0, 1))
    return features.view(batch, count, *features.shape[1:]).mean(dim=1)


def adapt_first_conv3d(model: nn.Module, input_channels: int, pretrained: bool) -> None:
    """Replace the first Conv3d for `input_channels` inputs (pretrained RGB kernels averaged)."""
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv3d)]
    if not found:
        raise ValueError("model.encoder.input_channels: this video model has no Conv3d stem to adapt.")
    name, conv = found[0]
    assert isinstance(conv, nn.Conv3d)
    new = nn.Conv3d(input_channels, conv.out_channels, 1, bias=conv.bias is not None)
    new.kernel_size, new.stride, new.padding, new.dilation = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    new.groups = conv.groups
    new.weight = nn.Parameter(
        conv.weight.new_empty(conv.out_channels, input_channels // conv.groups, *conv.kernel_size)
    )
    nn.init.kaiming_uniform_(new.weight, a=5**0.5)
    if pretrained:
        with torch.no_grad():
            new.weight.copy_(
                conv.weight.mean(dim=1, keepdim=True).repeat(1, input_channels, 1, 1, 1) * 3 / input_channels
            )
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
