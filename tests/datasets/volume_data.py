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


def make_volume_segmentation_dataset(root: Path, count: int = 16, size: tuple[int, int, int] = (18, 16, 16)) -> Path:
    """volumes/<id>.<format> with masks/<id> of the same format: noise with a bright box (class 1) and a dark box
    (class 2) at random places; splits.json 50/25/25. The default size is not the volume_size the tests train at,
    so crop / pad runs (and is undone by glovita_infer)."""
    rng = np.random.default_rng(0)
    ids = []
    for index in range(count):
        volume = rng.normal(0, 1, size).astype(np.float32)
        mask = np.zeros(size, np.uint8)
        for value, shift in ((1, 2.5), (2, -2.5)):
            corner = [int(rng.integers(0, s - 6)) for s in size]
            box = tuple(slice(c, c + 6) for c in corner)
            volume[box] += shift
            mask[box] = value
        sample_id = f"case_{index:03d}.{('nii.gz', 'npy')[index % 2]}"
        write_pair(root, sample_id, {"volumes": volume, "masks": mask})
        ids.append(sample_id)
    write_quarter_splits(root, ids)
    return root


def write_pair(root: Path, sample_id: str, arrays: dict[str, np.ndarray]) -> None:
    """Each array at <root>/<folder>/<sample_id> (a volume and its mask or target)."""
    for folder, array in arrays.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        write_volume(root / folder / sample_id, array)


def write_quarter_splits(root: Path, ids: list[str]) -> None:
    """splits.json with half of `ids` for train, a quarter each for val and test."""
    quarter = len(ids) // 4
    splits = {"train": ids[: 2 * quarter], "val": ids[2 * quarter : 3 * quarter], "test": ids[3 * quarter :]}
    (root / "splits.json").write_text(json.dumps(splits))


def make_volume_annotation_dataset(root: Path, count: int = 16, size: tuple[int, int, int] = (16, 16, 16)) -> Path:
    """Classification volumes with annotated segments: noise with a box that is bright (class 'bright') or dark
    (class 'dark'), masks/<id>.npy marking the box (0/1), labels.json and splits.json 50/25/25."""
    rng = np.random.default_rng(1)
    ids, labels = [], {}
    for index in range(count):
        volume = rng.normal(0, 1, size).astype(np.float32)
        mask = np.zeros(size, np.uint8)
        corner = [int(rng.integers(0, s - 6)) for s in size]
        box = tuple(slice(c, c + 6) for c in corner)
        volume[box] += 2.5 if index % 2 else -2.5
        mask[box] = 1
        sample_id = f"case_{index:03d}.npy"
        for folder, array in (("volumes", volume), ("masks", mask)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            write_volume(root / folder / sample_id, array)
        ids.append(sample_id)
        labels[sample_id] = "bright" if index % 2 else "dark"
    quarter = count // 4
    splits = {"train": ids[: 2 * quarter], "val": ids[2 * quarter : 3 * quarter], "test": ids[3 * quarter :]}
    (root / "splits.json").write_text(json.dumps(splits))
    (root / "labels.json").write_text(json.dumps(labels))
    return root
