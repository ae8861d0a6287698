"""Per-slide feature folders as CLAM's `extract_features_fp.py` and TRIDENT write them: `h5_files/<slide_id>.h5`
(`features` (N, D), optional `coords` (N, 2)) or `pt_files/<slide_id>.pt` (the (N, D) tensor), a labels CSV
(`case_id,slide_id,label`) and the split from CLAM's `splits_<fold>.csv` (columns train, val, test listing slide
ids) or a split column of the labels CSV.

Every slide is one bag, read from its own file when it is needed: memory stays bounded by the largest slide.
"""

import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from glovita.datasets.checks import file_key
from glovita.datasets.precomputed_features import finite_file_keys, remember_finite

SPLITS = ("train", "val", "test")
SUFFIXES = (".h5", ".pt")


@dataclass(frozen=True)
class Slide:
    """One slide of the labels CSV with its feature file."""

    slide_id: str
    case_id: str
    path: Path
    target: int | tuple[float, ...]
    num_instances: int = 0
    known_finite: bool = False
    """The file, unchanged since, was read whole before and found free of NaN/inf (the finite-file cache)."""


@dataclass(frozen=True)
class SlideTable:
    """The slides of each split, the class names in index order ([] for regression), the feature dimension."""

    splits: dict[str, list[Slide]]
    class_names: list[str]
    feature_dim: int
    has_coords: bool


def find_slide_files(features_dir: Path) -> dict[str, Path]:
    """slide id -> feature file: h5_files/*.h5 when that folder exists, else pt_files/*.pt, else the .h5 / .pt
    files of the folder itself."""
    if not features_dir.is_dir():
        raise NotADirectoryError(
            f"data.features_dir '{features_dir}' is not a folder. Point it at the folder holding h5_files/ or "
            "pt_files/ (CLAM's and TRIDENT's output)."
        )
    for folder, suffix in ((features_dir / "h5_files", ".h5"), (features_dir / "pt_files", ".pt")):
        if folder.is_dir():
            return {path.stem: path for path in sorted(folder.glob(f"*{suffix}"))}
    return {path.stem: path for path in sorted(features_dir.iterdir()) if path.suffix in SUFFIXES}


def _read_csv(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' does not exist.")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _require_columns(path: Path, columns: list[str], needed: dict[str, str]) -> None:
    for flag, column in needed.items():
        if column not in columns:
            raise ValueError(
                f"labels_csv '{path}' has no column {column!r} (columns: {', '.join(columns)}). Set --data.{flag}."
            )


def _class_names(raw: list[str], given: list[str] | None, num_classes: int, path: Path) -> list[str]:
    """Names in index order: the given ones, the indices 0..K-1 when every label is an integer, else sorted.
    Blank labels count for nothing here; the slide's own row refuses them."""
    raw = [text.strip() for text in raw if text.strip()]
    if given is not None:
        names = list(given)
    elif all(text.strip().lstrip("-").isdigit() for text in raw):
        names = [str(i) for i in range(num_classes)]
    else:
        names = sorted(set(raw))
    if len(names) != num_classes:
        raise ValueError(
            f"labels_csv '{path}': {len(names)} classes ({', '.join(names[:10])}) but data.num_classes={num_classes}. "
            "Set --data.num_classes (or --data.class_names in index order)."
        )
    return names


def _parse_target(text: str, names: list[str], regression: bool, num_classes: int, where: str) -> int | tuple:
    text = text.strip()
    try:
        if regression:
            values = tuple(float(v) for v in text.split(";"))
            if len(values) == num_classes and all(np.isfinite(values)):
                return values
        elif text in names:
            return names.index(text)
        elif 0 <= int(text) < num_classes:
            return int(text)
    except ValueError:
        pass
    expected = f"{num_classes} finite number(s) separated by ';'" if regression else f"one of {', '.join(names[:10])}"
    raise ValueError(f"{where}: label {text!r} is not {expected}.")


def _split_membership(
    rows: list[dict[str, str]], labels_csv: Path, slide_column: str, splits_file: Path | None, split_column: str
) -> dict[str, str]:
    """slide id -> split, from a CLAM splits_<fold>.csv or the labels CSV's split column."""
    membership: dict[str, str] = {}
    if splits_file is not None:
        columns, split_rows = _read_csv(splits_file, "splits file")
        missing = [s for s in ("train", "val") if s not in columns]
        if missing:
            raise ValueError(
                f"splits file '{splits_file}' has no {' or '.join(missing)} column (columns: {', '.join(columns)}). "
                "CLAM's splits_<fold>.csv has columns train, val, test listing slide ids."
            )
        for row in split_rows:
            for split in SPLITS:
                slide = (row.get(split) or "").strip()
                if not slide:
                    continue
                if membership.setdefault(slide, split) != split:
                    raise ValueError(
                        f"splits file '{splits_file}': slide {slide!r} is listed under both "
                        f"{membership[slide]} and {split}."
                    )
        return membership
    for line, row in enumerate(rows, start=2):
        split = (row.get(split_column) or "").strip()
        if split not in (*SPLITS, ""):
            raise ValueError(
                f"labels_csv '{labels_csv}' line {line}: {split_column}={split!r}; use train, val, test or leave "
                "it empty to leave the slide out."
            )
        if split:
            membership[row[slide_column].strip()] = split
    return membership


def _check_cases(splits: dict[str, list[Slide]], where: Path) -> None:
    """Slides of one case must not end up in two splits (that leaks the patient into the evaluation)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for split, slides in splits.items():
        for slide in slides:
            seen[slide.case_id].add(split)
    leaking = {case: splits_of for case, splits_of in seen.items() if len(splits_of) > 1}
    if leaking:
        shown = "; ".join(f"{case} in {', '.join(sorted(s))}" for case, s in list(leaking.items())[:5])
        raise ValueError(
            f"{where}: {len(leaking)} case(s) have slides in more than one split ({shown}). Put all slides of a "
            "case into one split."
        )


def _open_features(path: Path) -> tuple[object, object | None, object | None]:
    """(features, coords or None, the open h5 file or None) of one slide; .pt tensors are memory-mapped."""
    if path.suffix == ".pt":
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if isinstance(loaded, dict):
            loaded = loaded.get("features")
        if not isinstance(loaded, torch.Tensor):
            raise ValueError(f"Slide file '{path}' holds no features tensor (a (N, D) tensor or a dict with "
                             "'features').")  # fmt: skip
        return loaded, None, None
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"Slide file '{path}' is not a readable HDF5 file ({err}).") from err
    if "features" not in handle:
        keys = ", ".join(sorted(handle.keys())) or "none"
        handle.close()
        raise ValueError(f"Slide file '{path}' has no 'features' dataset (keys: {keys}).")
    return handle["features"], handle["coords"] if "coords" in handle else None, handle


def _bag_shape(shape: tuple[int, ...], path: Path) -> tuple[int, int]:
    """(N, D) of a features array stored as (N, D) or (1, N, D) (TRIDENT's batch axis)."""
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2:
        raise ValueError(f"Slide file '{path}': 'features' must be (N, D) or (1, N, D), got {tuple(shape)}.")
    return int(shape[0]), int(shape[1])


def _scan(slide: Slide, known: set[str]) -> tuple[Slide, int, bool]:
    """The slide with its instance count, its feature dim, and whether it has coords; refuses empty bags."""
    features, coords, handle = _open_features(slide.path)
    try:
        count, dim = _bag_shape(tuple(features.shape), slide.path)  # type: ignore[attr-defined]
        if coords is not None and tuple(coords.shape) != (count, 2):  # type: ignore[attr-defined]
            raise ValueError(
                f"Slide file '{slide.path}': 'coords' has shape {tuple(coords.shape)} but 'features' holds "  # type: ignore[attr-defined]
                f"{count} instances; it must be ({count}, 2)."
            )
    finally:
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]
    if count == 0:
        raise ValueError(f"Slide {slide.slide_id!r} ('{slide.path}') is an empty bag (0 instances). Remove it from "
                         "the labels CSV or the splits.")  # fmt: skip
    finite = file_key(slide.path) in known
    return Slide(slide.slide_id, slide.case_id, slide.path, slide.target, count, finite), dim, coords is not None


def read_slide_table(
    features_dir: Path,
    labels_csv: Path,
    columns: dict[str, str],
    splits_file: Path | None,
    class_names: list[str] | None,
    regression: bool,
    num_classes: int,
) -> SlideTable:
    """Every slide of every split with its file, label and size; errors name the slide, the file or the column.

    `columns` maps the flags slide_id_column, case_id_column, label_column, split_column to column names."""
    header, rows = _read_csv(labels_csv, "labels_csv")
    slide_column, case_column, label_column = (
        columns["slide_id_column"],
        columns["case_id_column"],
        columns["label_column"],
    )
    needed = {"slide_id_column": slide_column, "label_column": label_column}
    if splits_file is None:
        needed["split_column"] = columns["split_column"]
    _require_columns(labels_csv, header, needed)
    membership = _split_membership(rows, labels_csv, slide_column, splits_file, columns["split_column"])
    by_slide = {row[slide_column].strip(): (line, row) for line, row in enumerate(rows, start=2)}
    unlabelled = sorted(set(membership) - set(by_slide))
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} slide(s) of the splits have no row in labels_csv '{labels_csv}': "
            f"{', '.join(unlabelled[:5])}{', ...' if len(unlabelled) > 5 else ''}."
        )
    if not any(split == "train" for split in membership.values()):
        raise ValueError(f"No slide is in the train split ({splits_file or labels_csv}).")
    names = [] if regression else _class_names([by_slide[s][1][label_column] for s in membership], class_names,
                                                num_classes, labels_csv)  # fmt: skip
    files = find_slide_files(features_dir)
    missing = sorted(s for s in membership if s not in files)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} slide(s) listed for training/evaluation have no feature file in '{features_dir}': "
            f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''} (looked for h5_files/<slide_id>.h5, "
            "pt_files/<slide_id>.pt or <slide_id>.h5/.pt)."
        )
    splits: dict[str, list[Slide]] = {split: [] for split in SPLITS}
    for slide_id, split in membership.items():
        line, row = by_slide[slide_id]
        where = f"labels_csv '{labels_csv}' line {line} (slide {slide_id!r})"
        target = _parse_target(row[label_column], names, regression, num_classes, where)
        case = (row.get(case_column) or "").strip() or slide_id
        splits[split].append(Slide(slide_id, case, files[slide_id], target))
    _check_cases(splits, splits_file or labels_csv)
    known = finite_file_keys()
    scanned: dict[str, list[Slide]] = {}
    dims: dict[int, str] = {}
    has_coords = True
    for split, slides in splits.items():
        scanned[split] = []
        for slide in slides:
            done, dim, coords = _scan(slide, known)
            dims.setdefault(dim, slide.slide_id)
            has_coords &= coords
            scanned[split].append(done)
    if len(dims) > 1:
        shown = ", ".join(f"{dim} (e.g. slide {slide!r})" for dim, slide in dims.items())
        raise ValueError(f"Slide features in '{features_dir}' differ in dimension: {shown}. Extract every slide "
                         "with the same encoder.")  # fmt: skip
    return SlideTable(scanned, names, next(iter(dims)), has_coords)


def _read_h5(features: Any, path: Path, scratch: np.ndarray | None = None) -> np.ndarray:
    """A whole h5py dataset as an array: a fresh one, or a view of `scratch` (a reused buffer, large enough) when
    given. Contiguous, unfiltered data (h5py's default layout) is read straight from the file at its offset,
    without HDF5's read path (about 15 % faster); chunked data (CLAM writes one row per chunk) through
    read_direct."""
    shape, size = features.shape, int(np.prod(features.shape))
    values = np.empty(shape, features.dtype) if scratch is None else scratch[:size].view(features.dtype).reshape(shape)
    if values.size == 0:
        return values
    offset = features.id.get_offset() if features.chunks is None and features.compression is None else None
    if offset is not None and features.dtype.byteorder in ("=", "|", "<" if sys.byteorder == "little" else ">"):
        with path.open("rb", buffering=0) as handle:
            handle.seek(offset)
            if handle.readinto(values.data.cast("B")) == values.nbytes:
                return values
    features.read_direct(values)
    return values


class SlideFeatureDataset(Dataset):
    """One bag per slide: (features (N_i, D) as stored, target). A key (index, seed) of the training sampler
    draws at most `max_instances` instances at random; a plain index (evaluation) reads them all."""

    def __init__(self, slides: list[Slide], regression: bool, max_instances: int | None) -> None:
        self.slides = slides
        self.regression = regression
        self.max_instances = max_instances
        self.sample_names = [slide.slide_id for slide in slides]
        dtype = torch.float32 if regression else torch.long
        self.targets = torch.tensor([slide.target for slide in slides], dtype=dtype)
        if regression:
            self.targets = self.targets.reshape(len(slides), -1)
        self._checked = [slide.known_finite for slide in slides]
        """Slides known free of NaN/inf (remembered by path, size and mtime, as whole feature files are): their
        reads skip the check. Once every slide has been checked in this process, the new ones are remembered."""
        self._newly_checked: list[Path] = []
        self._buffer: np.ndarray | None = None

    in_memory = False
    """Slides are read from their files when they are needed."""

    def __len__(self) -> int:
        return len(self.slides)

    def subset(self, keep: list[int]) -> "SlideFeatureDataset":
        """The same dataset over some slides (data.data_fraction)."""
        return SlideFeatureDataset([self.slides[i] for i in keep], self.regression, self.max_instances)

    def _features(self, index: int, reuse: bool) -> np.ndarray:
        """Every instance of slide `index` (N, D) as stored. With `reuse`, float16 data is read into this
        dataset's reused buffer (a view, valid until the next read): it is converted to float32 at once anyway,
        and a fresh 4 MB array per slide costs page faults."""
        features, _, handle = _open_features(self.slides[index].path)
        try:
            if isinstance(features, torch.Tensor):
                values = features.numpy()
            else:
                size = int(np.prod(features.shape))  # type: ignore[attr-defined]
                half = reuse and features.dtype == np.float16  # type: ignore[attr-defined]
                values = _read_h5(features, self.slides[index].path, self._scratch(size) if half else None)
        finally:
            if handle is not None:
                handle.close()  # type: ignore[attr-defined]
        return values.reshape(-1, values.shape[-1])

    def _scratch(self, size: int) -> np.ndarray:
        """A float16 buffer of at least `size` values, kept between reads (per process)."""
        if self._buffer is None or self._buffer.size < size:
            self._buffer = np.empty(size, dtype=np.float16)
        return self._buffer

    def coords(self, index: int) -> np.ndarray | None:
        """Instance positions (N, 2) of slide `index` when its file has them (CLAM/TRIDENT h5 files)."""
        path = self.slides[index].path
        if path.suffix != ".h5":
            return None
        import h5py

        with h5py.File(path, "r") as handle:
            return np.asarray(handle["coords"][()]) if "coords" in handle else None

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D) float32, target); NaN/inf are refused naming the slide."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        values = self._features(index, reuse=True)
        if seed is not None and self.max_instances is not None and len(values) > self.max_instances:
            chosen = np.random.default_rng(seed).choice(len(values), self.max_instances, replace=False)
            values = values[np.sort(chosen)]
        bag = torch.from_numpy(values).float()  # converted here, once: the collate of one bag then copies nothing
        if not self._checked[index]:
            self._check(index, bag, sampled=seed is not None and len(bag) < self.slides[index].num_instances)
        return bag, self.targets[index]

    def _check(self, index: int, bag: torch.Tensor, sampled: bool) -> None:
        """Refuse NaN/inf naming the slide; a slide read whole and clean is remembered (all at once, when every
        slide of this dataset has been checked in this process)."""
        # A sum is finite iff every value is (one fast pass); a float32 sum can also overflow, so confirm.
        if not torch.isfinite(bag.sum()) and not bool(torch.isfinite(bag).all()):
            bad = (~torch.isfinite(bag)).nonzero()[0].tolist()
            slide = self.slides[index]
            where = f"dim {bad[1]} of a sampled instance" if sampled else f"instance {bad[0]}, dim {bad[1]}"
            raise ValueError(f"Slide {slide.slide_id!r} ('{slide.path}'): 'features' holds NaN or infinite values "
                             f"({where}).")  # fmt: skip
        if sampled:  # only some instances were seen
            return
        self._checked[index] = True
        self._newly_checked.append(self.slides[index].path)
        if all(self._checked):
            remember_finite(self._newly_checked)
            self._newly_checked = []
