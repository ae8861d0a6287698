"""Preprocessing defaults (image size, resize size, mean, std, interpolation, patch size) of encoder families."""

import math

from glovita.augmentation.preprocessing import Preprocessing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def timm_preprocessing(model) -> Preprocessing:
    """Defaults of a timm model from its pretrained config (crop_pct gives the resize size)."""
    cfg = model.pretrained_cfg
    image_size = int(cfg.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    patch_embed = getattr(model, "patch_embed", None)
    patch = getattr(patch_embed, "patch_size", None)
    return Preprocessing(
        image_size=image_size,
        resize_size=int(math.floor(image_size / crop_pct)),
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
        interpolation=str(cfg.get("interpolation") or "bicubic"),
        patch_size=int(patch[0]) if isinstance(patch, tuple | list) else patch,
        crop_mode=str(cfg.get("crop_mode") or "center"),
    )


def torchvision_preprocessing(weights) -> Preprocessing:
    """Defaults of a torchvision model from its weights enum (ImageNet 224/256 when it has none)."""
    if weights is None:
        return Preprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD, "bilinear", None)
    transform = weights.transforms()
    return Preprocessing(
        image_size=int(transform.crop_size[0]),
        resize_size=int(transform.resize_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
        patch_size=None,
    )


def adapt_statistics(values: tuple[float, ...], channels: int, fill: float) -> tuple[float, ...]:
    """Per-channel statistics for `channels` inputs: averaged for grayscale, padded with `fill` for extra channels."""
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    if channels > len(values):
        return values + (fill,) * (channels - len(values))
    return values[:channels]


def dino_preprocessing(base: Preprocessing, image_size: int) -> Preprocessing:
    """DINO ViTs at `image_size` (the position embeddings are built for it): resize at the usual 224/256 ratio,
    a multiple of the patch size so every pixel lands in a patch."""
    patch = base.patch_size or 1
    if image_size % patch:
        raise ValueError(
            f"model.encoder.image_size={image_size} is not a multiple of the patch size {patch}. "
            f"Use e.g. {image_size // patch * patch or patch}."
        )
    resize = -(-round(image_size * 256 / 224) // patch) * patch
    return Preprocessing(image_size, resize, base.mean, base.std, base.interpolation, patch, base.crop_mode)
