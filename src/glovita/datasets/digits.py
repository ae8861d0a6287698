"""scikit-learn's bundled handwritten digits (1,797 8x8 images), written once as a generic image dataset."""

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from glovita.datasets.splits import stratified_split
from glovita.runtime.io import atomic_path

_SPLIT_SEED = 0
_TEST_FRACTION = 0.2
_VAL_FRACTION = 0.25
"""Of the remaining 80 %, so that train/val/test is 60/20/20."""


MANIFEST_COLUMNS = ("image", "split", "label", "ink")
"""manifest.csv: the image (relative to the folder), its split, its digit, and its ink fraction."""


def prepare_digits(root: Path) -> None:
    """Write images/<digit>/<index>.png, splits.json and manifest.csv under `root` unless they are already there.

    The folder is filled under a temporary name and renamed at the end, so an interrupted first run leaves
    nothing half-written behind. manifest.csv (a two-task set: the digit, and its ink fraction: the mean of the
    stored image's pixels / 255, exactly computable) is added to a folder written before it existed.
    """
    if (root / "splits.json").is_file():
        if not (root / "manifest.csv").is_file():
            _write_manifest(root)
        return
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"data.data_root_dir: '{root}' is not empty but has no splits.json, so it is not a digits folder "
            "written by GloViTa. Point --data.data_root_dir at an empty or missing folder."
        )
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    labels = digits.target.tolist()
    rest, test = stratified_split(labels, _TEST_FRACTION, _SPLIT_SEED, stratify=True)
    train_pos, val_pos = stratified_split([labels[i] for i in rest], _VAL_FRACTION, _SPLIT_SEED, stratify=True)
    ids = [f"{label}/{index:04d}.png" for index, label in enumerate(labels)]
    splits = {
        "train": [ids[rest[i]] for i in train_pos],
        "val": [ids[rest[i]] for i in val_pos],
        "test": [ids[i] for i in test],
    }
    if root.exists():
        root.rmdir()  # an empty folder (a non-empty one was checked above)
    with atomic_path(root) as staging:
        shutil.rmtree(staging, ignore_errors=True)
        for image, sample_id in zip(images, ids, strict=True):
            path = staging / "images" / sample_id
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(path)
        (staging / "splits.json").write_text(json.dumps(splits, indent=1))
        _write_manifest(staging)


def _write_manifest(folder: Path) -> None:
    """manifest.csv of the digits folder at `folder`, from its splits.json and images."""
    import csv
    import io

    splits = json.loads((folder / "splits.json").read_text())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for split in ("train", "val", "test"):
        for sample_id in splits[split]:
            with Image.open(folder / "images" / sample_id) as image:
                pixels = np.asarray(image, dtype=np.float64)
            writer.writerow([f"images/{sample_id}", split, sample_id.split("/")[0], f"{pixels.mean() / 255:.6f}"])
    with atomic_path(folder / "manifest.csv") as tmp:
        tmp.write_text(text.getvalue())
