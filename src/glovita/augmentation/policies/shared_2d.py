"""Shared 2D policies built from torchvision transforms v2. Each takes the resolved preprocessing and returns
a transform from a PIL image to a normalised float tensor (C, H, W). Geometric ops after the tensor conversion
interpolate bilinearly: torchvision supports bicubic on tensors only for resizing."""

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from glovita.augmentation.preprocessing import Preprocessing


def interpolation_mode(name: str) -> InterpolationMode:
    return InterpolationMode(name)


def to_normalised_tensor(params: Preprocessing) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(params.mean), std=list(params.std))]


def resize_and_crop(params: Preprocessing) -> list[v2.Transform]:
    """The evaluation geometry of the encoder's crop mode (timm's `transforms_imagenet_eval`): `center` resizes the
    shorter side to resize_size; `squash` both sides (the aspect ratio is not kept); `border` the longer side, then
    pads with the mean colour; each then centre-crops image_size."""
    mode = interpolation_mode(params.interpolation)
    if params.crop_mode == "center":
        return [v2.Resize(params.resize_size, interpolation=mode, antialias=True), v2.CenterCrop(params.image_size)]
    if params.crop_mode == "squash":
        size = [params.resize_size, params.resize_size]
        return [v2.Resize(size, interpolation=mode, antialias=True), v2.CenterCrop(params.image_size)]
    if params.crop_mode == "border":
        return [_LongerSide(params.resize_size, mode), _CropOrPad(params.image_size, params.mean)]
    raise ValueError(f"crop mode {params.crop_mode!r} is not one of center, squash, border.")


class _LongerSide(v2.Transform):
    """Resize so the longer side is `size`, keeping the aspect ratio (timm's ResizeKeepRatio(longest=1))."""

    def __init__(self, size: int, mode: InterpolationMode) -> None:
        super().__init__()
        self.size, self.mode = size, mode

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        height, width = v2.functional.get_size(inpt)
        ratio = max(height, width) / self.size
        shape = [round(height / ratio), round(width / ratio)]
        return self._call_kernel(v2.functional.resize, inpt, shape, interpolation=self.mode, antialias=True)


class _CropOrPad(v2.Transform):
    """Centre-crop to `size`, padding a smaller side with the mean colour first (timm's CenterCropOrPad)."""

    def __init__(self, size: int, mean: tuple[float, ...]) -> None:
        super().__init__()
        self.size, self.fill = size, [round(255 * value) for value in mean]

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        height, width = v2.functional.get_size(inpt)
        pad_h, pad_w = max(self.size - height, 0), max(self.size - width, 0)
        if pad_h or pad_w:
            padding = [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2]
            fill = 0 if isinstance(inpt, tv_tensors.Mask) else self.fill  # a label map pads with background
            inpt = self._call_kernel(v2.functional.pad, inpt, padding, fill=fill)
        return self._call_kernel(v2.functional.center_crop, inpt, [self.size, self.size])


def default(params: Preprocessing) -> v2.Transform:
    """Resize and centre-crop as the encoder's crop mode says (`resize_and_crop`), normalise (deterministic)."""
    return v2.Compose([*resize_and_crop(params), v2.PILToTensor(), *to_normalised_tensor(params)])


def default_2d_1(params: Preprocessing) -> v2.Transform:
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


def randaugment(params: Preprocessing) -> v2.Transform:
    """Random resized crop (scale 0.35-1), horizontal flip and RandAugment (2 ops, magnitude 9)."""
    if len(params.mean) not in (1, 3):
        raise ValueError(
            f"data.augmentation.train_policy='randaugment' needs 1- or 3-channel images, not {len(params.mean)}. "
            "Choose one of default_2d_1 ... default_2d_5."
        )
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


def _intensity(params: Preprocessing, strength: float) -> v2.Transform | None:
    """Brightness/contrast jitter; saturation and hue only for 3-channel input (a grayscale scan converted to
    RGB keeps R = G = B under them, and 1-channel tensors must not be treated as RGB). None for other channel
    counts: torchvision's colour kernels accept only 1 or 3 channels."""
    channels = len(params.mean)
    if channels not in (1, 3):
        return None
    colour = strength / 2 if channels == 3 else 0.0
    return v2.ColorJitter(brightness=strength, contrast=strength, saturation=colour, hue=min(colour / 4, 0.5))


class LuminanceNoise(v2.Transform):
    """Gaussian noise shared by all channels of a float image in [0, 1], then clipped; label maps (tv_tensors.Mask)
    and boxes pass through untouched, like every photometric v2 transform.

    torchvision's GaussianNoise draws every channel independently, which turns a grayscale image stored as RGB
    (X-rays, CT slices) into coloured speckle; one noise field for all channels keeps gray images gray.
    """

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask | tv_tensors.BoundingBoxes):
            return inpt
        noise = torch.randn((1, *inpt.shape[-2:]), dtype=inpt.dtype, device=inpt.device) * self.sigma
        noisy = (inpt.as_subclass(torch.Tensor) + noise).clamp(0.0, 1.0)
        return tv_tensors.wrap(noisy, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else noisy


def _ladder(
    params: Preprocessing,
    crop_scale: float,
    vertical_flip: bool,
    degrees: float,
    translate: float,
    intensity: float,
    blur_p: float,
    noise_sigma: float,
    erase_p: float,
) -> v2.Transform:
    """One rung of the default_2d ladder: geometry, intensity, blur/noise, random erasing."""
    mode = interpolation_mode(params.interpolation)
    steps: list[v2.Transform] = [
        v2.PILToTensor(),
        v2.RandomResizedCrop(params.image_size, scale=(crop_scale, 1.0), interpolation=mode),
        v2.RandomHorizontalFlip(),
    ]
    if vertical_flip:
        steps.append(v2.RandomVerticalFlip())
    if degrees or translate:
        steps.append(
            v2.RandomAffine(degrees=degrees, translate=(translate, translate), interpolation=InterpolationMode.BILINEAR)
        )
    jitter = _intensity(params, intensity) if intensity else None
    if jitter is not None:
        steps.append(v2.RandomApply([jitter], p=0.8))
    if blur_p:
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))], p=blur_p))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if noise_sigma:
        steps.append(v2.RandomApply([LuminanceNoise(noise_sigma)], p=0.5))
    steps.append(v2.Normalize(mean=list(params.mean), std=list(params.std)))
    if erase_p:
        steps.append(v2.RandomErasing(p=erase_p, scale=(0.02, 0.2)))
    return v2.Compose(steps)


def default_2d_2(params: Preprocessing) -> v2.Transform:
    """Mild: crop (scale 0.7-1), flip, rotation up to 10 degrees, brightness/contrast 0.1."""
    return _ladder(params, 0.7, False, 10, 0.0, 0.1, 0.0, 0.0, 0.0)


def default_2d_3(params: Preprocessing) -> v2.Transform:
    """Medium: crop (0.5-1), flip, rotation 20 + shift 10 %, intensity 0.2, blur (p 0.2)."""
    return _ladder(params, 0.5, False, 20, 0.1, 0.2, 0.2, 0.0, 0.0)


def default_2d_4(params: Preprocessing) -> v2.Transform:
    """Strong: crop (0.35-1), flip, rotation 30 + shift 10 %, intensity 0.3, blur (p 0.3), noise, erasing (p 0.25)."""
    return _ladder(params, 0.35, False, 30, 0.1, 0.3, 0.3, 0.05, 0.25)


def default_2d_5(params: Preprocessing) -> v2.Transform:
    """Strongest: crop (0.25-1), both flips, rotation 45 + shift 15 %, intensity 0.4, blur, noise, erasing (p 0.5)."""
    return _ladder(params, 0.25, True, 45, 0.15, 0.4, 0.5, 0.08, 0.5)


POLICIES: dict[str, Callable[[Preprocessing], v2.Transform]] = {
    "default": default,
    "shared_default_2d": default,
    "default_2d_1": default_2d_1,
    "default_2d_2": default_2d_2,
    "default_2d_3": default_2d_3,
    "default_2d_4": default_2d_4,
    "default_2d_5": default_2d_5,
    "randaugment": randaugment,
    "default_2d_randaugment": randaugment,
}
