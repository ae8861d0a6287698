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


def labelfree_pairs(root: Path, counts: tuple[tuple[str, int], ...] = (("train", 48), ("val", 8), ("test", 8)),
                    size: int = 32) -> Path:  # fmt: skip
    """Microscopy-like pairs under images/<split>/x/ and targets/<split>/x/: the target shows 2-4 bright discs
    ("nuclei") on black; the source (RGB) is the target blurred, dimmed, lifted and with noise."""
    from PIL import ImageFilter

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for split, count in counts:
        for i in range(count):
            target = np.zeros((size, size), np.float32)
            for _ in range(rng.integers(2, 5)):
                cy, cx, radius = rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(2.5, 5)
                target[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = rng.uniform(0.6, 1.0)
            clean = Image.fromarray((target * 255).astype(np.uint8))
            blurred = np.asarray(clean.filter(ImageFilter.GaussianBlur(2)), np.float32) / 255
            source = np.clip(0.5 * blurred + 0.2 + rng.normal(0, 0.05, blurred.shape), 0, 1)
            for folder, image in (("images", Image.fromarray((source * 255).astype(np.uint8)).convert("RGB")),
                                  ("targets", clean)):  # fmt: skip
                path = root / folder / split / "x" / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
    return root


def labelfree_volume_pairs(root: Path, count: int = 24, size: int = 16, scale: float = 1000.0) -> Path:
    """3D microscopy-like pairs: volumes/<id> and targets/<id> (NIfTI and .npy alternately), the target 2-3 bright
    balls ("nuclei") of value up to `scale` on 0, the source the target blurred, dimmed, lifted and with noise (its own
    units); splits.json 50/25/25."""
    from scipy.ndimage import gaussian_filter

    from tests.datasets.volume_data import write_pair, write_quarter_splits

    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:size, :size, :size]
    ids = []
    for index in range(count):
        target = np.zeros((size, size, size), np.float32)
        for _ in range(rng.integers(2, 4)):
            centre, radius = rng.uniform(3, size - 3, 3), rng.uniform(2, 3.5)
            inside = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2
            target[inside] = rng.uniform(0.6, 1.0) * scale
        source = 0.5 * gaussian_filter(target / scale, 1.5) + 0.2 + rng.normal(0, 0.05, target.shape)
        sample_id = f"cell_{index:03d}.{('nii.gz', 'npy')[index % 2]}"
        write_pair(root, sample_id, {"volumes": source.astype(np.float32), "targets": target})
        ids.append(sample_id)
    write_quarter_splits(root, ids)
    return root
