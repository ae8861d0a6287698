"""Small generated volume datasets for tests and the docs commands."""

import json
from pathlib import Path

import numpy as np

FORMATS = ("npy", "npz", "nii.gz", "tif")


def class_volume(label: int, index: int, size: tuple[int, int, int] = (16, 16, 16)) -> np.ndarray:
    """Noise; class 1 adds a bright centred cube (unchanged by mirroring, so every 3D policy keeps the label)."""
    rng = np.random.default_rng(label * 1000 + index)
    volume = rng.normal(0, 1, size).astype(np.float32)
    if label == 1:
        lo = [s // 4 for s in size]
        hi = [s - s // 4 for s in size]
        volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += 2.0
    return volume


def write_volume(path: Path, volume: np.ndarray) -> None:
    name = path.name
    if name.endswith(".npy"):
        np.save(path, volume)
    elif name.endswith(".npz"):
        np.savez_compressed(path, data=volume)
    elif name.endswith(".nii.gz"):
        import nibabel

        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(path))
    else:
        import tifffile

        tifffile.imwrite(path, volume)


def make_volume_dataset(root: Path, per_class: int = 12, size: tuple[int, int, int] = (16, 16, 16)) -> Path:
    """volumes/<id>.<format> (formats rotate), splits.json (train/val/test) and labels.json."""
    (root / "volumes").mkdir(parents=True, exist_ok=True)
    ids, labels = [], {}
    for label in (0, 1):
        for i in range(per_class):
            sample_id = f"c{label}_{i:03d}.{FORMATS[i % len(FORMATS)]}"
            write_volume(root / "volumes" / sample_id, class_volume(label, i, size))
            ids.append(sample_id)
            labels[sample_id] = f"class{label}"
    half = len(ids) // 2
    split = {"train": [], "val": [], "test": []}
    for offset in (0, half):
        block = ids[offset : offset + half]
        n = len(block)
        split["train"] += block[: n // 2]
        split["val"] += block[n // 2 : 3 * n // 4]
        split["test"] += block[3 * n // 4 :]
    (root / "splits.json").write_text(json.dumps(split))
    (root / "labels.json").write_text(json.dumps(labels))
    return root
