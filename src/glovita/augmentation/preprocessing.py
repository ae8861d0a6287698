"""The one preprocessing record: what an encoder expects as input, and what the 2D and video policies apply."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Preprocessing:
    """Input size, resize size, normalisation statistics, interpolation and patch size of an encoder (from its
    pretrained config), or as a run resolved them for its policies."""

    image_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    patch_size: int | None = None
    crop_mode: str = "center"
    """How the evaluation resize and crop fit the image, as timm's pretrained configs say: `center` (shorter side
    to resize_size, centre crop), `squash` (both sides to resize_size, the aspect ratio not kept, centre crop) or
    `border` (longer side to resize_size, padded with the mean colour, centre crop)."""
