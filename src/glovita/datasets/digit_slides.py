"""Digit slides: a MIL set we can run anywhere, laid out as CLAM's feature extraction writes whole-slide images.

A slide is a grid of digit patches from scikit-learn's bundled digits; its label is `positive` iff it holds a 9
(`negative` otherwise). Each patch's features are its digit's features from glovita_extract_features (the val and
test digits of a digits run, which the encoder never trained on) or its 64 raw pixels. Written:

    h5_files/<slide_id>.h5   features (N, D), coords (N, 2) in thumbnail pixels, digits (N,) each patch's digit
    thumbnails/<slide_id>.png  the grid of digits, patch_pixels per patch
    labels.csv               case_id,slide_id,label (a case holds one or two slides)
    splits/splits_<k>.csv    CLAM's layout: columns train, val, test listing slide ids; the test cases are the
                             same in every fold
"""

import csv
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glovita.configs.digit_slides import DigitSlidesConfig
from glovita.runtime.io import atomic_path

NINE = 9
CLASS_NAMES = ["negative", "positive"]
"""Label names; sorted, as slide_folder orders names, `positive` (holds a 9) is class 1."""


@dataclass(frozen=True)
class DigitSlides:
    num_slides: int
    num_positive: int
    feature_dim: int


def _digit_pool(cfg: DigitSlidesConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (M, D), digit labels (M,), 8x8 images (M, 8, 8) in [0, 16]) of the digits slides are made of."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    if cfg.features_dir is None:
        return digits.data.astype(np.float32) / 16.0, digits.target, digits.images
    import h5py

    folder = cfg.features_dir
    if not folder.is_dir():
        raise NotADirectoryError(f"features_dir '{folder}' is not a folder (glovita_extract_features' output_dir).")
    features, labels, indices = [], [], []
    for split in ("val", "test"):
        found = [p for p in sorted(folder.glob("*.h5")) if re.search(rf"(^|_){split}(_|\.h5$)", p.name)]
        if len(found) != 1:
            raise ValueError(
                f"features_dir '{folder}' needs exactly one .h5 file of the {split} split (a name holding "
                f"'_{split}_' or '{split}.h5'); found {[p.name for p in found] or 'none'}."
            )
        with h5py.File(found[0], "r") as handle:
            if not {"features", "labels", "ids"} <= set(handle.keys()) or handle["features"].ndim != 2:
                raise ValueError(f"'{found[0]}' is not an instance feature file of glovita_extract_features.")
            features.append(np.asarray(handle["features"][()]))
            labels.append(np.asarray(handle["labels"][()]))
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in handle["ids"][()]]
        for sample_id in ids:  # digits images are named <label>/<index>.png
            match = re.search(r"(\d+)\.png$", sample_id)
            if match is None:
                raise ValueError(f"'{found[0]}': id {sample_id!r} is not a digits image; extract from a digits run.")
            indices.append(int(match.group(1)))
    index = np.asarray(indices)
    return np.concatenate(features), np.concatenate(labels), digits.images[index]


def _write_splits(folder: Path, cases: list[str], slides_of: dict[str, list[str]], cfg: DigitSlidesConfig) -> None:
    rng = np.random.default_rng(cfg.seed + 1)
    order = [cases[i] for i in rng.permutation(len(cases))]
    num_test = max(1, round(cfg.test_fraction * len(order)))
    test, rest = order[:num_test], order[num_test:]
    folds = np.array_split(np.arange(len(rest)), cfg.num_folds) if cfg.num_folds > 1 else None
    for fold in range(cfg.num_folds):
        if folds is None:
            val_cases = set(rest[: max(1, round(0.2 * len(rest)))])
        else:
            val_cases = {rest[i] for i in folds[fold]}
        columns = {
            "train": [s for c in rest if c not in val_cases for s in slides_of[c]],
            "val": [s for c in rest if c in val_cases for s in slides_of[c]],
            "test": [s for c in test for s in slides_of[c]],
        }
        length = max(len(v) for v in columns.values())
        with atomic_path(folder / f"splits_{fold}.csv") as tmp, tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["", "train", "val", "test"])  # pandas' to_csv layout, as CLAM writes it
            for row in range(length):
                writer.writerow([row, *(v[row] if row < len(v) else "" for v in columns.values())])


def make_digit_slides(cfg: DigitSlidesConfig) -> DigitSlides:
    """Write the set into cfg.output_dir (filled under a temporary name and renamed at the end)."""
    import h5py
    from PIL import Image

    out = cfg.output_dir
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"output_dir '{out}' exists and is not an empty folder. Choose a new folder.")
    features, labels, images = _digit_pool(cfg)
    nines, others = np.flatnonzero(labels == NINE), np.flatnonzero(labels != NINE)
    if len(nines) == 0 or len(others) == 0:
        raise ValueError("The digit pool needs 9s and other digits; extract every split of a digits run.")
    rng = np.random.default_rng(cfg.seed)
    positive = rng.permutation(cfg.num_slides) < round(cfg.positive_fraction * cfg.num_slides)
    p = cfg.patch_pixels
    slide_ids = [f"slide_{i:04d}" for i in range(cfg.num_slides)]
    case_of: dict[str, str] = {}
    slides_of: dict[str, list[str]] = {}
    for slide_id in slide_ids:  # a case holds one slide, or two consecutive ones
        previous = list(slides_of)[-1] if slides_of else None
        if previous is not None and len(slides_of[previous]) == 1 and rng.random() < 0.3:
            slides_of[previous].append(slide_id)
        else:
            previous = f"case_{len(slides_of):04d}"
            slides_of[previous] = [slide_id]
        case_of[slide_id] = previous
    if out.exists():
        out.rmdir()
    with atomic_path(out) as staging:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in ("h5_files", "thumbnails", "splits"):
            (staging / folder).mkdir(parents=True)
        rows = []
        for slide_id, is_positive in zip(slide_ids, positive.tolist(), strict=True):
            rows_, cols = (int(v) for v in rng.integers(cfg.grid_min, cfg.grid_max + 1, size=2))
            count = rows_ * cols
            members = rng.choice(others, count)
            if is_positive:
                places = rng.choice(count, int(rng.integers(1, cfg.max_nines + 1)), replace=False)
                members[places] = rng.choice(nines, len(places))
            grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows_)), axis=-1).reshape(-1, 2)
            with h5py.File(staging / "h5_files" / f"{slide_id}.h5", "w") as handle:
                handle.create_dataset("features", data=features[members])
                handle.create_dataset("coords", data=(grid * p).astype(np.int64))
                handle.create_dataset("digits", data=labels[members].astype(np.int64))
            tiles = np.kron(images[members], np.ones((p // 8 or 1, p // 8 or 1)))  # (N, p, p), nearest upscaling
            picture = tiles.reshape(rows_, cols, *tiles.shape[1:]).transpose(0, 2, 1, 3).reshape(
                rows_ * tiles.shape[1], cols * tiles.shape[2]
            )  # fmt: skip
            thumbnail = Image.fromarray((255 - picture * 255 / 16).clip(0, 255).astype(np.uint8), mode="L")
            thumbnail = thumbnail.resize((cols * p, rows_ * p), Image.Resampling.NEAREST)
            thumbnail.save(staging / "thumbnails" / f"{slide_id}.png")
            rows.append([case_of[slide_id], slide_id, CLASS_NAMES[int(is_positive)]])
        with (staging / "labels.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["case_id", "slide_id", "label"])
            writer.writerows(rows)
        _write_splits(staging / "splits", list(slides_of), slides_of, cfg)
        settings = cfg.model_dump(mode="json")
        (staging / "settings.json").write_text(json.dumps({**settings, "feature_dim": features.shape[1]}, indent=1))
    return DigitSlides(cfg.num_slides, int(positive.sum()), int(features.shape[1]))
