"""An image to predict (label-free tasks) as a torchvision v2 tv_tensor: geometric transforms move it with the input
exactly as they move the input (same kernels: bilinear resizing, the same crop and flip), while photometric
transforms (colour jitter, blur, RandAugment's colour ops) and normalisation leave it alone: they are the input's
augmentation, not a change of what is to be predicted."""

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F


class TargetImage(tv_tensors.TVTensor):
    """(C, H, W) float values of the image to predict."""

    @classmethod
    def _wrap(cls, tensor: torch.Tensor) -> "TargetImage":
        return tensor.as_subclass(cls)

    def __new__(cls, data: Any, *, dtype: torch.dtype | None = None, device: Any = None) -> "TargetImage":
        tensor = cls._to_tensor(data, dtype=dtype, device=device, requires_grad=False)
        return cls._wrap(tensor)


GEOMETRIC = {
    F.resize: F.resize_image,
    F.center_crop: F.center_crop_image,
    F.crop: F.crop_image,
    F.resized_crop: F.resized_crop_image,
    F.horizontal_flip: F.horizontal_flip_image,
    F.vertical_flip: F.vertical_flip_image,
    F.pad: F.pad_image,
    F.affine: F.affine_image,
    F.rotate: F.rotate_image,
    F.perspective: F.perspective_image,
    F.elastic: F.elastic_image,
}
"""The geometric functionals a TargetImage goes through, each with the image kernel; every other functional passes
it through unchanged."""


def _kept(kernel: Any) -> Any:
    """`kernel` on the plain tensor, its result a TargetImage again (so the next transform still knows it)."""

    def apply(target: TargetImage, *args: Any, **kwargs: Any) -> TargetImage:
        return TargetImage._wrap(kernel(target.as_subclass(torch.Tensor), *args, **kwargs))

    return apply


for functional, kernel in GEOMETRIC.items():
    F.register_kernel(functional, TargetImage)(_kept(kernel))
