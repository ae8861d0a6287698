"""Generic image dataset: image files under one folder, split by subfolders or splits.json, labels from
folder names, labels.json or a CSV. The layouts are documented in docs/datasets/DATASET_STRUCTURE.md."""

import json
import math
import posixpath
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import tv_tensors

from glovita.datasets.label_maps import MaskReading, load_mask
from glovita.datasets.manifest import ManifestSource, TargetColumn, class_index, read_csv_rows, read_manifest
from glovita.datasets.splits import stratified_split
from glovita.runtime.batch import ID, INPUT, LABEL_MAP, TARGET_IMAGE, TARGETS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SPLIT_NAMES = ("train", "val", "test")
_HOLDOUT_SEED = 0
"""Fixed seed of validation hold-outs, so every run of a dataset sees the same validation set."""

Target = int | tuple[float, ...]


@dataclass(frozen=True)
class SplitSamples:
    """(image path, target) lists per split, and the class names (index order) for classification."""

    train: list[tuple[Path, Target]]
    val: list[tuple[Path, Target]]
    test: list[tuple[Path, Target]]
    class_names: list[str]
    fields: dict[Path, dict[str, Any]] = field(default_factory=dict)
    """Further sample fields per input path (a manifest's target columns: named heads' targets)."""
    column_classes: dict[str, list[str]] = field(default_factory=dict)
    """The class names of each class column among `fields`."""


_HIGH_DEPTH_SCALE = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}
"""Single-channel modes deeper than 8 bits (16-bit PNG/TIFF, 32-bit float TIFF) and what maps them to [0, 1]:
16-bit integers are divided by 65535 (Pillow also opens 16-bit PNGs as 32-bit mode I); floats are taken as stored."""


def _high_depth_tensor(image: Image.Image, mode: str) -> tv_tensors.Image:
    """A deep single-channel image as a float tensor (C, H, W) in [0, 1], keeping its dynamic range (converting
    it to 8-bit mode L would clip it). RGB repeats the channel; RGBA adds an opaque alpha."""
    values = torch.from_numpy(np.asarray(image, dtype=np.float32) / _HIGH_DEPTH_SCALE[image.mode])[None]
    if mode == "RGB":
        values = values.repeat(3, 1, 1)
    elif mode == "RGBA":
        values = torch.cat([values.repeat(3, 1, 1), torch.ones_like(values)])
    return tv_tensors.Image(values)


def load_image(path: Path, mode: str) -> Image.Image | tv_tensors.Image:
    """Open an image file as `mode` (L, RGB or RGBA): 8-bit images as PIL images, deeper single-channel ones
    (16-bit, float) as float tensors in [0, 1] at their full range; name the file when that fails."""
    try:
        with Image.open(path) as image:
            if image.mode in _HIGH_DEPTH_SCALE:
                return _high_depth_tensor(image, mode)
            return image.convert(mode)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"Image file '{path}' does not exist. Fix the split/label files or restore it."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot read image file '{path}' ({err}). Replace or remove the file.") from err


def check_image(path: Path) -> tuple[int, int]:
    """(H, W) of an image file decoded whole: a body cut short after a good header (a truncated PNG or JPEG)
    fails here, before training, not in a loader worker later."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.size[1], image.size[0]
    except FileNotFoundError as err:
        raise FileNotFoundError(f"'{path}' does not exist") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"'{path}' is not a readable image ({err})") from err


def image_size(image: Image.Image | tv_tensors.Image) -> tuple[int, int]:
    """(H, W) of an image as load_image gives it."""
    if isinstance(image, Image.Image):
        return image.size[1], image.size[0]
    return int(image.shape[-2]), int(image.shape[-1])


@dataclass(frozen=True)
class TargetImages:
    """data.task LabelFree: each image's target image file and the mode it is read in (L or RGB)."""

    of: dict[Path, Path]
    mode: str

    def read(self, image: Path) -> torch.Tensor:
        """The target of `image` as float values (C, H, W) in [0, 1] (16-bit files at their full range)."""
        from torchvision.transforms.v2 import functional as F

        loaded = load_image(self.of[image], self.mode)
        return F.to_dtype(F.to_image(loaded), torch.float32, scale=True).as_subclass(torch.Tensor)

    def check(self, image: Path, size: tuple[int, int]) -> None:
        """The target decodes whole and is the image's size."""
        target = self.of[image]
        found = check_image(target)
        if found != size:
            raise ValueError(f"Target image '{target}' is {found[1]}x{found[0]} but its image '{image}' is "
                             f"{size[1]}x{size[0]}. Make the target the image's size.")  # fmt: skip


class GenericImageDataset(Dataset):
    """(PIL image, target) pairs; target is a class index (int) or a float tensor of regression values. With label
    maps (`masks`), samples are records {input, targets, label_map, id}."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, Target]],
        image_mode: str,
        masks: MaskReading | None = None,
        fields: dict[Path, dict[str, Any]] | None = None,
        targets: TargetImages | None = None,
    ) -> None:
        self.samples = list(samples)
        self.image_mode = image_mode
        self.masks = masks
        self.fields = fields or {}
        """Further fields per image path (a manifest's target columns), added to its sample."""
        self._mask_of = {} if masks is None else dict(zip((p for p, _ in self.samples), masks.paths, strict=True))
        self.target_images = targets
        """data.task LabelFree: each image's target image."""

    def __len__(self) -> int:
        return len(self.samples)

    def check_file(self, path: Path) -> None:
        """The check before training: the image decodes whole; its label map (read whole) or its target image
        fits it."""
        size = check_image(path)
        if self.masks is not None:
            self._check_size(path, size, self.load_label_map(self._mask_of[path]))
        if self.target_images is not None:
            self.target_images.check(path, size)

    def check_inputs(self, path: Path) -> list[Path]:
        """The files the check reads (a changed label map or target image is checked again)."""
        if self.target_images is not None:
            return [path, self.target_images.of[path]]
        return [path] if self.masks is None else [path, self._mask_of[path]]

    def load_label_map(self, mask: Path) -> np.ndarray:
        """A label map file as stored (H, W), its values checked."""
        assert self.masks is not None
        return load_mask(mask, self.masks)

    def _check_size(self, path: Path, size: tuple[int, int], values: np.ndarray) -> None:
        if tuple(values.shape) != size:
            raise ValueError(
                f"Mask file '{self._mask_of[path]}' is {values.shape[1]}x{values.shape[0]} but its image '{path}' is "
                f"{size[1]}x{size[0]}. Make the mask the image's size."
            )

    def __getitem__(self, index: int) -> Any:
        path, target = self.samples[index]
        image = load_image(path, self.image_mode)
        value = torch.tensor(target, dtype=torch.float32) if isinstance(target, tuple) else target
        if self.target_images is not None:
            wanted = self.target_images.read(path)
            if tuple(wanted.shape[-2:]) != image_size(image):
                self.target_images.check(path, image_size(image))
            return {INPUT: image, TARGETS: value, TARGET_IMAGE: wanted, ID: str(path)}
        if self.masks is None:
            if not self.fields:
                return image, value
            return {INPUT: image, TARGETS: value, ID: str(path), **self.fields[path]}
        label_map = self.load_label_map(self._mask_of[path])
        self._check_size(path, image_size(image), label_map)
        return {INPUT: image, TARGETS: value, LABEL_MAP: label_map, ID: str(path), **self.fields.get(path, {})}

    @property
    def targets(self) -> list[Target]:
        return [target for _, target in self.samples]


def _list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Image files under `folder`, sorted; hidden files and folders (.ipynb_checkpoints, .DS_Store) are skipped."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes and not any(part.startswith(".") for part in
                                                                     p.relative_to(folder).parts)
    )  # fmt: skip


def unlabeled_images(folder: Path, image_mode: str) -> "GenericImageDataset":
    """Every image under `folder` (recursively, hidden entries skipped) without a label (target -1)."""
    if not folder.is_dir():
        raise NotADirectoryError(f"'{folder}' is not a folder of images.")
    paths = _list_files(folder, IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"'{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return GenericImageDataset([(path, -1) for path in paths], image_mode)


VAL_FOLDER_NAMES = ("val", "valid", "validation")
"""Folder names read as the validation split (data.split_source subdirs); the first one present is taken."""


def _split_ids_from_subdirs(images_dir: Path, suffixes: tuple[str, ...]) -> dict[str, list[str]]:
    splits = {}
    for name in SPLIT_NAMES:
        names = VAL_FOLDER_NAMES if name == "val" else (name,)
        folder = next((images_dir / n for n in names if (images_dir / n).is_dir()), images_dir / name)
        if folder.is_dir():
            splits[name] = [p.relative_to(images_dir).as_posix() for p in _list_files(folder, suffixes)]
    if "train" not in splits:
        found = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
        hint = imagefolder_hint(images_dir, suffixes) or (
            "Create images/train, images/val, images/test, or use --data.split_source splits_json."
        )
        raise FileNotFoundError(
            f"data.split_source='subdirs' needs '{images_dir / 'train'}' (and val/, test/); found folders "
            f"{found[:8]}. {hint}"
        )
    return splits


def _class_folders(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The subfolders of `folder` that hold files with `suffixes` directly (torchvision ImageFolder's classes)."""
    if not folder.is_dir():
        return []
    return sorted(
        sub
        for sub in folder.iterdir()
        if sub.is_dir() and any(p.suffix.lower() in suffixes for p in sub.iterdir() if p.is_file())
    )


def imagefolder_hint(folder: Path, suffixes: tuple[str, ...], images_dir: str | None = None) -> str:
    """The flags that read `folder` when it has torchvision's ImageFolder layout (two or more class folders of
    images, no split folders), else ''."""
    classes = _class_folders(folder, suffixes)
    if len(classes) < 2 or {c.name for c in classes} & {"train", "test", *VAL_FOLDER_NAMES}:
        return ""
    where = f" --data.images_dir {images_dir}" if images_dir is not None else ""
    names = ", ".join(c.name for c in classes[:4]) + (", ..." if len(classes) > 4 else "")
    return (f"'{folder}' has torchvision's ImageFolder layout (class folders {names}, no split folders): read it "
            f"with --data.split_source imagefolder{where} (a fixed random split per class: 80 % train, 10 % val, "
            "10 % test; --data.val_fraction and --data.test_fraction change the shares).")  # fmt: skip


def _split_ids_from_class_folders(
    images_dir: Path, suffixes: tuple[str, ...], val_fraction: float, test_fraction: float
) -> dict[str, list[str]]:
    """ImageFolder layout: every class folder's images, split at random per class (a fixed seed: the same split
    in every run and in glovita_infer) into train, val and test."""
    classes = _class_folders(images_dir, suffixes)
    if not classes:
        raise FileNotFoundError(
            f"data.split_source='imagefolder' needs class folders of images under '{images_dir}' (e.g. "
            f"'{images_dir / 'cat' / '001.png'}'); found none. Point --data.data_root_dir and --data.images_dir at "
            "the folder that holds the class folders."
        )
    ids = [p.relative_to(images_dir).as_posix() for c in classes for p in _list_files(c, suffixes)]
    labels = [Path(i).parent.name for i in ids]
    rest, test = stratified_split(labels, test_fraction, _HOLDOUT_SEED, stratify=True)
    kept, val = stratified_split([labels[i] for i in rest], val_fraction / (1 - test_fraction), _HOLDOUT_SEED + 1,
                                 stratify=True)  # fmt: skip
    return {"train": [ids[rest[i]] for i in kept], "val": [ids[rest[i]] for i in val], "test": [ids[i] for i in test]}


def split_ids_from_json(splits_file: Path, fold: int, hint: str = "") -> dict[str, list[str]]:
    """The split file's splits of fold `fold`; `hint` replaces the advice when the file is missing (an
    ImageFolder layout's flags)."""
    if not splits_file.is_file():
        raise FileNotFoundError(
            f"Split file '{splits_file}' does not exist. "
            + (hint or "Create it (see docs/datasets/DATASET_STRUCTURE.md), point --data.splits_file at it, or use "
               "--data.split_source subdirs.")
        )  # fmt: skip
    try:
        raw = json.loads(splits_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"Split file '{splits_file}' is not valid JSON: {err}.") from err
    if not isinstance(raw, dict):
        raise ValueError(f"Split file '{splits_file}' must hold a JSON object with keys train/val/test or 0, 1, ...")
    fold_keys = sorted((k for k in raw if k.isdigit()), key=int)
    splits: dict[str, list[str]] = {k: v for k, v in raw.items() if k in SPLIT_NAMES}
    if fold_keys:
        if str(fold) not in raw:
            raise ValueError(
                f"data.fold={fold} but '{splits_file}' has folds {', '.join(fold_keys)}. Pick one of them."
            )
        entry = raw[str(fold)]
        if isinstance(entry, dict):
            # nnU-Net style: each fold lists its own train and val ids.
            splits.update({k: v for k, v in entry.items() if k in SPLIT_NAMES})
        else:
            # k-fold partitions: fold k validates, the other partitions train.
            splits["val"] = list(entry)
            splits["train"] = [i for k in fold_keys if k != str(fold) for i in raw[k]]
    elif fold != 0:
        raise ValueError(f"data.fold={fold} but '{splits_file}' has no numeric fold keys. Use --data.fold 0.")
    for name, ids in splits.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"'{splits_file}': split {name!r} must be a list of image paths (strings).")
    if "train" not in splits:
        raise ValueError(f"'{splits_file}' has no 'train' split (keys: {sorted(raw)}). Add one.")
    return splits


def _labels_from_json(labels_file: Path) -> dict[str, object]:
    if not labels_file.is_file():
        raise FileNotFoundError(f"Labels file '{labels_file}' does not exist. Create it or set --data.labels_file.")
    try:
        labels = json.loads(labels_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"Labels file '{labels_file}' is not valid JSON: {err}.") from err
    if not isinstance(labels, dict):
        raise ValueError(f"Labels file '{labels_file}' must map image path -> label (a JSON object).")
    return labels


def labels_from_csv(labels_file: Path, id_column: str, label_column: str) -> dict[str, object]:
    if not labels_file.is_file():
        raise FileNotFoundError(f"Labels file '{labels_file}' does not exist. Create it or set --data.labels_file.")
    columns, rows = read_csv_rows(labels_file)
    for column, flag in ((id_column, "csv_id_column"), (label_column, "csv_label_column")):
        if column not in columns:
            raise ValueError(
                f"Labels file '{labels_file}' has no column {column!r} (columns: {', '.join(columns)}). "
                f"Set --data.{flag}."
            )
    return {row[id_column]: row[label_column] for _, row in rows}


def _class_targets(raw: dict[str, object], num_classes: int, source: str) -> tuple[dict[str, int], list[str]]:
    """Map raw labels to class indices: integers are indices, anything else is a class name (sorted)."""
    as_int: dict[str, int] = {}
    for key, value in raw.items():
        text = str(value).strip()
        if isinstance(value, bool) or not text.lstrip("-").isdigit():
            break
        as_int[key] = int(text)
    else:
        bad = sorted({v for v in as_int.values() if not 0 <= v < num_classes})
        if bad:
            raise ValueError(
                f"{source}: class indices {bad} are outside 0..{num_classes - 1} (data.num_classes={num_classes}). "
                "Fix the labels or --data.num_classes."
            )
        return as_int, [str(i) for i in range(num_classes)]
    labels = (str(v) for v in raw.values())
    index = class_index(labels, num_classes, source, "data.num_classes", "Set --data.num_classes")
    return {key: index[str(value)] for key, value in raw.items()}, list(index)


def _regression_targets(raw: dict[str, object], num_outputs: int, source: str) -> dict[str, tuple[float, ...]]:
    targets = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        try:
            floats = tuple(float(v) for v in values)  # type: ignore[arg-type]  # non-numbers raise below
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: label {value!r} of '{key}' is not a number (regression).") from err
        if not all(math.isfinite(v) for v in floats):
            raise ValueError(
                f"{source}: the regression label {value!r} of '{key}' is not a finite number (NaN or inf). "
                "Fix or remove that label."
            )
        if len(floats) != num_outputs:
            raise ValueError(
                f"{source}: '{key}' has {len(floats)} regression values but data.num_classes={num_outputs}. "
                f"Set --data.num_classes {len(floats)}."
            )
        targets[key] = floats
    return targets


def _check_no_overlaps(split_ids: dict[str, list[str]], where: Path) -> None:
    """No sample twice in one split or in two splits (a test image seen in training inflates every metric)."""
    problems = []
    # One file may be spelled several ways (./0/a.png, 0//a.png): compare normalised paths.
    split_ids = {name: [posixpath.normpath(i) for i in ids] for name, ids in split_ids.items()}
    for name, ids in split_ids.items():
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            problems.append(f"{len(repeated)} listed twice in {name} (e.g. {', '.join(repeated[:3])})")
    names = sorted(split_ids)
    for a_index, a in enumerate(names):
        for b in names[a_index + 1 :]:
            shared = sorted(set(split_ids[a]) & set(split_ids[b]))
            if shared:
                problems.append(f"{len(shared)} in both {a} and {b} (e.g. {', '.join(shared[:3])})")
    if problems:
        raise ValueError(
            f"'{where}': samples overlap: {'; '.join(problems)}. Fix the splits, or pass "
            "--data.allow_overlapping_splits if that is intended."
        )


def _warn_unknown_labels(raw: dict[str, object], listed: set[str], image_root: Path, source: str) -> None:
    """Labels for images that exist nowhere are a sign of wrong ids (another folder, another extension)."""
    unknown = [key for key in raw if key not in listed and not (image_root / key).exists()]
    if unknown:
        warnings.warn(
            f"{source} names {len(unknown)} image(s) that do not exist under '{image_root}' (e.g. {unknown[0]!r}); "
            "they are ignored. Check that its ids are paths relative to that folder.",
            stacklevel=3,
        )


def collect_generic_samples(
    root: Path,
    images_dir: Path,
    split_source: str,
    splits_file: Path,
    label_source: str,
    labels_file: Path | None,
    csv_id_column: str,
    csv_label_column: str,
    fold: int,
    val_fraction: float | None,
    regression: bool,
    num_classes: int,
    allow_overlaps: bool = False,
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
    labelled: bool = True,
    manifest_file: Path = Path("manifest.csv"),
    csv_split_column: str = "split",
    columns: Sequence[TargetColumn] = (),
    test_fraction: float | None = None,
) -> SplitSamples:
    """Resolve split membership and labels of a generic image dataset, checking every file reference. `suffixes`:
    the files split subfolders list (videos list video files); `labelled` False skips the sample labels (targets
    0; per-frame labels come from elsewhere). With split_source csv, a manifest (`manifest_file`) lists the files,
    their splits, labels and further target `columns`."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.data_root_dir: '{root}' does not exist. Point --data.data_root_dir at the dataset folder."
        )
    if split_source == "csv":
        manifest = ManifestSource(
            root / manifest_file,
            csv_id_column,
            csv_split_column,
            csv_label_column if labelled else None,
            regression,
            num_classes,
            list(columns),
        )
        return _manifest_samples(manifest, fold, val_fraction, allow_overlaps)
    image_root = root / images_dir
    if not image_root.is_dir():
        hint = imagefolder_hint(root, suffixes, images_dir=".")
        raise FileNotFoundError(
            f"Images folder '{image_root}' does not exist. "
            + (hint or "Put the images there or set --data.images_dir.")
        )
    if split_source == "subdirs":
        split_ids = _split_ids_from_subdirs(image_root, suffixes)
    elif split_source == "imagefolder":
        split_ids = _split_ids_from_class_folders(image_root, suffixes, val_fraction or 0.1, test_fraction or 0.1)
    else:
        split_ids = split_ids_from_json(root / splits_file, fold, imagefolder_hint(image_root, suffixes))
    all_ids = [i for ids in split_ids.values() for i in ids]
    if not allow_overlaps:
        _check_no_overlaps(split_ids, root / splits_file if split_source != "subdirs" else image_root)

    if not labelled:
        raw: dict[str, object] = {i: 0 for i in all_ids}
        source = "no labels"
    elif label_source == "folder":
        raw = {i: Path(i).parent.name for i in all_ids}
        source = f"the folder names under '{image_root}'"
    elif label_source == "json":
        path = root / (labels_file or Path("labels.json"))
        raw, source = _labels_from_json(path), f"labels file '{path}'"
    else:
        path = root / (labels_file or Path("labels.csv"))
        raw, source = labels_from_csv(path, csv_id_column, csv_label_column), f"labels file '{path}'"
    if labelled:
        _warn_unknown_labels(raw, set(all_ids), image_root, source)
    missing = [i for i in all_ids if i not in raw]
    if missing:
        raise ValueError(
            f"{source} has no label for {len(missing)} image(s), e.g. {missing[:3]}. "
            f"Keys must be image paths relative to '{image_root}'."
        )
    raw = {i: raw[i] for i in all_ids}
    if not labelled:
        targets: dict[str, Target] = {i: 0 for i in all_ids}
        class_names: list[str] = []
    elif regression:
        targets = dict(_regression_targets(raw, num_classes, source))
        class_names = []
    else:
        indices, class_names = _class_targets(raw, num_classes, source)
        targets = dict(indices)

    def samples(ids: list[str]) -> list[tuple[Path, Target]]:
        return [(image_root / i, targets[i]) for i in ids]

    train, val, test = (
        samples(split_ids["train"]),
        samples(split_ids.get("val", [])),
        samples(split_ids.get("test", [])),
    )
    if not val:
        if val_fraction is None:
            raise ValueError(
                f"The dataset under '{root}' has no validation split. Add a 'val' split, "
                "or hold out part of train with --data.val_fraction 0.1."
            )
        kept, held = stratified_split([t for _, t in train], val_fraction, _HOLDOUT_SEED, stratify=not regression)
        train, val = [train[i] for i in kept], [train[i] for i in held]
    return SplitSamples(train=train, val=val, test=test, class_names=class_names)


def _manifest_samples(
    source: ManifestSource, fold: int, val_fraction: float | None, allow_overlaps: bool
) -> SplitSamples:
    """The splits a manifest CSV (or folder of split CSVs) lists, with a validation hold-out when it has none."""
    if fold != 0:
        raise ValueError(f"data.fold={fold}: a manifest has one split per row, no folds. Use --data.fold 0, or "
                         "write a manifest per fold.")  # fmt: skip
    manifest = read_manifest(source)
    location = source.location
    if not allow_overlaps:
        _check_no_overlaps({name: [str(p) for p, _ in rows] for name, rows in manifest.splits.items()}, location)
    train, val, test = manifest.splits["train"], manifest.splits["val"], manifest.splits["test"]
    if not train:
        raise ValueError(f"Manifest '{location}' has no training rows. Mark some rows train.")
    if not val:
        if val_fraction is None:
            raise ValueError(
                f"Manifest '{location}' has no validation rows. Mark some rows val, or hold out part of train with "
                "--data.val_fraction 0.1."
            )
        stratify = source.label_column is not None and not source.regression
        kept, held = stratified_split([t for _, t in train], val_fraction, _HOLDOUT_SEED, stratify=stratify)
        train, val = [train[i] for i in kept], [train[i] for i in held]
    return SplitSamples(train, val, test, manifest.class_names, manifest.fields, manifest.column_classes)
