"""Label maps (segmentation masks): where each sample's mask is, how it is read and which values it may hold."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
_INDEX_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L", "I;16N")
"""Pillow modes whose pixel values are read as class indices as stored (palette images: the palette index)."""


@dataclass(frozen=True)
class MaskReading:
    """How a dataset's label maps are read: their files (aligned with the samples) and the values allowed."""

    paths: list[Path]
    num_classes: int
    ignore_index: int
    binary: bool
    """data.subtask binary: 255 means foreground (1); every other value must be 0 or 1."""
    colors: dict[int, int] | None = None
    """data.mask_colors_file: class index by colour (0xRRGGBB), for RGB masks."""
    coco: Any = None
    """data.coco_file: a CocoLabelMaps that paints the label maps (the paths are then the images')."""


def mask_path(image: Path, image_root: Path, mask_root: Path, suffixes: tuple[str, ...] = MASK_SUFFIXES) -> Path:
    """The label map of `image`: the same relative path under `mask_root`, as stored or with one of `suffixes` (a
    .jpg photo's mask is a .png); the first suffix's name when none exists (the check then names it)."""
    relative = image.relative_to(image_root)
    stem = relative.name.removesuffix(".gz").rsplit(".", 1)[0]
    candidates = [mask_root / relative, *(mask_root / relative.with_name(stem + s) for s in suffixes)]
    return next((c for c in candidates if c.is_file()), mask_root / relative.with_name(stem + suffixes[0]))


def load_mask(path: Path, reading: MaskReading) -> np.ndarray:
    """A label map (H, W) of class indices (int64), read without colour conversion; 255 -> 1 for binary masks.
    RGB masks and values outside the classes (other than the ignore index) are refused naming the file."""
    if reading.coco is not None:
        return checked_labels(reading.coco.label_map(path), reading, reading.coco.file)
    try:
        with Image.open(path) as image:
            if reading.colors is not None and image.mode in ("RGB", "RGBA"):
                return checked_labels(_by_colour(np.asarray(image.convert("RGB")), reading.colors, path), reading, path)
            if image.mode not in _INDEX_MODES:
                raise ValueError(
                    f"Mask file '{path}' is a {image.mode} image; label maps are single-channel class indices. "
                    "Save it as a grayscale (mode L) or palette (mode P) PNG whose values are the classes."
                )
            values = np.asarray(image).astype(np.int64)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"Mask file '{path}' does not exist. Add it (same relative path as its image under data.masks_dir) or "
            "drop the image from the splits."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"Cannot read mask file '{path}' ({err}). Replace or remove the file.") from err
    return checked_labels(values, reading, path)


def _by_colour(pixels: np.ndarray, colors: dict[int, int], path: Path) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) classes by the colour table; a colour outside it is named."""
    codes = (pixels[..., 0].astype(np.int64) << 16) | (pixels[..., 1].astype(np.int64) << 8) | pixels[..., 2]
    found, inverse = np.unique(codes, return_inverse=True)
    unknown = [f"#{int(c):06x}" for c in found if int(c) not in colors]
    if unknown:
        raise ValueError(
            f"Mask file '{path}' has colours {', '.join(unknown[:5])} that data.mask_colors_file does not list. Add "
            "them with their class."
        )
    return np.asarray([colors[int(c)] for c in found], dtype=np.int64)[inverse].reshape(codes.shape)


def load_mask_colors(path: Path) -> dict[int, int]:
    """data.mask_colors_file: {"#rrggbb": class index} -> {0xRRGGBB: class index}."""
    if not path.is_file():
        raise FileNotFoundError(f"data.mask_colors_file: '{path}' does not exist.")
    table = {}
    for colour, index in json.loads(path.read_text()).items():
        text = colour.strip().lstrip("#")
        if len(text) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in text) or not isinstance(index, int):
            raise ValueError(f"data.mask_colors_file '{path}': {colour!r}: {index!r} is not \"#rrggbb\": class index.")
        table[int(text, 16)] = index
    return table


def checked_labels(values: np.ndarray, reading: MaskReading, path: Path) -> np.ndarray:
    """`values` with 255 -> 1 for binary masks; values outside the classes (other than the ignore index) are
    refused naming the file."""
    if reading.binary:
        values = np.where(values == 255, 1, values)
        allowed: tuple[int, ...] = (0, 1)
    else:
        allowed = (*range(reading.num_classes), reading.ignore_index)
    bad = np.setdiff1d(np.unique(values), allowed)
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8].tolist())
        fix = (
            "binary masks hold 0 and 1 (or 255)"
            if reading.binary
            else f"classes are 0..{reading.num_classes - 1}, data.ignore_index={reading.ignore_index}"
        )
        raise ValueError(f"Mask file '{path}' has values {shown} outside the classes ({fix}). Fix the mask or "
                         "--data.num_classes.")  # fmt: skip
    return values


def load_volume_mask(path: Path, reading: MaskReading) -> np.ndarray:
    """A 3D label map (D, H, W) of class indices (int64) from a volume file (a (1, D, H, W) array is squeezed);
    non-integer values and values outside the classes are refused naming the file."""
    from glovita.runtime.volume_files import read_volume

    if not path.is_file():
        raise FileNotFoundError(
            f"Mask file '{path}' does not exist. Add it (same relative path as its volume under data.masks_dir) or "
            "drop the volume from the splits."
        )
    try:
        array = read_volume(path)
    except ValueError as err:
        raise ValueError(f"Mask file '{path}' cannot be used: {err}") from err
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"Mask file '{path}' holds an array of shape {array.shape}; a label map is (D, H, W).")
    if not np.issubdtype(array.dtype, np.integer) and not np.array_equal(array, np.round(array)):
        raise ValueError(f"Mask file '{path}' holds fractional values; a label map holds class indices.")
    return checked_labels(np.asarray(array).astype(np.int64), reading, path)
