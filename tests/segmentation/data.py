"""Small segmentation sets written by the tests."""

import json
from pathlib import Path

import numpy as np
from PIL import Image


def save_mask(path: Path, values: np.ndarray, mode: str = "L") -> Path:
    """Write a label map as an 8-bit (L), palette (P) or 16-bit (I;16) PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        image = Image.fromarray(values.astype(np.uint8), mode="P")
        image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    elif mode == "I;16":
        image = Image.fromarray(values.astype(np.uint16))
    else:
        image = Image.fromarray(values.astype(np.uint8), mode=mode)
    image.save(path)
    return path


def segmentation_set(root: Path, size: int = 24) -> Path:
    """6 train / 2 val / 2 test RGB images (a bright square on black) with 3-class masks (square = 1 or 2)."""
    rng = np.random.default_rng(0)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for index in range(10):
        split = "train" if index < 6 else "val" if index < 8 else "test"
        mask = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, size // 2, 2)
        mask[top : top + size // 2, left : left + size // 2] = 1 + index % 2
        image = np.repeat((mask > 0)[..., None] * 255, 3, axis=2).astype(np.uint8)
        name = f"{index:02d}.jpg" if index == 0 else f"{index:02d}.png"  # a photo's mask is a .png
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / name)
        save_mask(root / "masks" / f"{index:02d}.png", mask)
        splits[split].append(name)
    (root / "splits.json").write_text(json.dumps(splits))
    return root
