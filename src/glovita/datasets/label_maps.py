"""Label maps (segmentation masks): where each sample's mask is, how it is read and which values it may hold."""

from dataclasses import dataclass
from pathlib import Path

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
    try:
        with Image.open(path) as image:
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
    from glovita.datasets.volumes import read_volume

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
