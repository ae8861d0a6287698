"""Shared 2D policies built from torchvision transforms v2. Each takes the resolved preprocessing and returns
a transform from a PIL image to a normalised float tensor (C, H, W). Geometric ops after the tensor conversion
interpolate bilinearly: torchvision supports bicubic on tensors only for resizing."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode, v2


@dataclass(frozen=True)
class PolicyParams:
    """Resolved sizes and statistics a policy needs."""

    image_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str


def interpolation_mode(name: str) -> InterpolationMode:
    return InterpolationMode(name)


def to_normalised_tensor(params: PolicyParams) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(params.mean), std=list(params.std))]


def default(params: PolicyParams) -> v2.Transform:
    """Resize the shorter side to resize_size, centre-crop image_size, normalise (deterministic)."""
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(params.resize_size, interpolation=interpolation_mode(params.interpolation), antialias=True),
            v2.CenterCrop(params.image_size),
            *to_normalised_tensor(params),
        ]
    )


def default_2d_1(params: PolicyParams) -> v2.Transform:
    """Light: random resized crop (scale 0.8-1) and horizontal flip."""
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop(
                params.image_size, scale=(0.8, 1.0), interpolation=interpolation_mode(params.interpolation)
            ),
            v2.RandomHorizontalFlip(),
            *to_normalised_tensor(params),
        ]
    )


def randaugment(params: PolicyParams) -> v2.Transform:
    """Random resized crop (scale 0.35-1), horizontal flip and RandAugment (2 ops, magnitude 9)."""
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop(
                params.image_size, scale=(0.35, 1.0), interpolation=interpolation_mode(params.interpolation)
            ),
            v2.RandomHorizontalFlip(),
            v2.RandAugment(num_ops=2, magnitude=9, interpolation=InterpolationMode.BILINEAR),
            *to_normalised_tensor(params),
        ]
    )


POLICIES: dict[str, Callable[[PolicyParams], v2.Transform]] = {
    "default": default,
    "shared_default_2d": default,
    "default_2d_1": default_2d_1,
    "randaugment": randaugment,
    "default_2d_randaugment": randaugment,
}
