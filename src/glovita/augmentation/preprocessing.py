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
