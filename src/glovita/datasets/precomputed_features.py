"""Precomputed features in HDF5: instances (N, D), fixed-size bags (B, N, D), variable-size bags (M, D) with
bag_ptr (B+1,) or bag_lengths (B,). Every file needs `features` and `labels`; `ids` (strings) is optional.

Instance files are served a batch at a time (`__getitems__`), so an epoch costs one fancy index per batch.
Bags are padded per batch and come with a boolean mask (B, N_max), True for real instances.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from glovita.datasets.checks import cache_dir, file_key

_MEMORY_FRACTION = 0.25
"""`auto` loads a file into memory when it is smaller than this share of physical memory."""


@dataclass(frozen=True)
class FeatureLayout:
    """What a feature file holds."""

    kind: str
    """'instances' or 'bags'."""
    num_samples: int
    feature_dim: int
    offsets: np.ndarray | None
    """Row offsets (B+1,) of variable-size bags; None for instances and fixed-size bags."""
    fixed_bag_size: int | None
    description: str


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def read_layout(path: Path) -> FeatureLayout:
    """Validate a feature file's keys and shapes; every error names the file, the key and the shapes."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"Feature file '{path}' does not exist. Check the --data.*_features_file flags.")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"Feature file '{path}' is not a readable HDF5 file ({err}).") from err
    with handle:
        missing = [key for key in ("features", "labels") if key not in handle]
        if missing:
            raise ValueError(
                f"Feature file '{path}' has no {' or '.join(repr(k) for k in missing)} dataset "
                f"(keys: {', '.join(sorted(handle.keys())) or 'none'}). It needs 'features' and 'labels'."
            )
        features, labels = handle["features"], handle["labels"]
        shape, n_labels = features.shape, labels.shape[0] if labels.shape else 0
        if "bag_ptr" in handle or "bag_lengths" in handle:
            if len(shape) != 2:
                raise ValueError(
                    f"Feature file '{path}': variable-size bags need 'features' of shape (M, D), got {shape}."
                )
            if "bag_ptr" in handle:
                offsets = np.asarray(handle["bag_ptr"][:], dtype=np.int64)
                if offsets.ndim != 1 or offsets.size != n_labels + 1 or offsets[0] != 0 or offsets[-1] != shape[0]:
                    ends = f"first {offsets[:1].tolist()}, last {offsets[-1:].tolist()}"
                    raise ValueError(
                        f"Feature file '{path}': 'bag_ptr' must have {n_labels + 1} entries (labels + 1) running "
                        f"from 0 to the {shape[0]} feature rows; got shape {offsets.shape}, {ends}."
                    )
                if np.any(np.diff(offsets) < 0):
                    raise ValueError(
                        f"Feature file '{path}': 'bag_ptr' decreases somewhere; it must be non-decreasing."
                    )
            else:
                lengths = np.asarray(handle["bag_lengths"][:], dtype=np.int64)
                if lengths.ndim != 1 or lengths.size != n_labels or np.any(lengths < 0) or lengths.sum() != shape[0]:
                    raise ValueError(
                        f"Feature file '{path}': 'bag_lengths' must hold {n_labels} non-negative lengths (one per "
                        f"label) summing to the {shape[0]} feature rows; got shape {lengths.shape}, sum "
                        f"{int(lengths.sum())}."
                    )
                offsets = np.concatenate([[0], np.cumsum(lengths)])
            if np.any(np.diff(offsets) == 0):
                raise ValueError(f"Feature file '{path}': bag {int(np.argmin(np.diff(offsets)))} is empty.")
            description = f"{n_labels} variable-size bags over {shape[0]} instances of dim {shape[1]}"
            return FeatureLayout("bags", n_labels, shape[1], offsets, None, description)
        if len(shape) == 3:
            if shape[0] != n_labels:
                raise ValueError(
                    f"Feature file '{path}': 'features' {shape} holds {shape[0]} bags but 'labels' {n_labels}."
                )
            description = f"{shape[0]} bags of {shape[1]} instances of dim {shape[2]}"
            return FeatureLayout("bags", shape[0], shape[2], None, shape[1], description)
        if len(shape) == 2:
            if shape[0] != n_labels:
                raise ValueError(
                    f"Feature file '{path}': 'features' {shape} has {shape[0]} rows but 'labels' has {n_labels}. "
                    "Instance files need one label per row (add 'bag_ptr' or 'bag_lengths' for bags)."
                )
            return FeatureLayout("instances", shape[0], shape[1], None, None, f"{shape[0]} instances of dim {shape[1]}")
        raise ValueError(
            f"Feature file '{path}': 'features' must be (N, D), (B, N, D) or (M, D) with bags; got {shape}."
        )


_CHECK_CHUNK_BYTES = 64 << 20
_READ_CHUNK_BYTES = 4 << 20
"""Rows read per call when a file is loaded into memory: small enough that the NaN/inf check of a chunk runs
while it is still in the CPU cache."""


def _nonfinite(chunk: np.ndarray, scratch: np.ndarray | None) -> bool:
    """Whether `chunk` holds NaN or inf. float16 (which numpy cannot test quickly) is checked on its bits: NaN and
    inf have the all-ones exponent 0x7C00; `scratch` is a reused uint16 buffer at least as large as the chunk."""
    if chunk.size == 0:
        return False
    if scratch is not None:
        exponent = np.bitwise_and(chunk.view(np.uint16), 0x7C00, out=scratch[: len(chunk)])
        return bool(exponent.max() == 0x7C00)
    return not bool(np.isfinite(chunk).all())


def _raise_nonfinite(chunk: np.ndarray, start: int, path: Path, where: str) -> None:
    bad = np.argwhere(~np.isfinite(chunk.astype(np.float32)))[0]
    bad[0] += start
    raise ValueError(
        f"Feature file '{path}': 'features' holds NaN or infinite values ({where}, first at {bad.tolist()})."
    )


def _check_finite(values: np.ndarray, path: Path, where: str) -> None:
    """Raise naming the first non-finite entry. Scans in chunks, so no full-size temporary is made."""
    rows = max(1, _CHECK_CHUNK_BYTES // max(1, values[:1].nbytes))
    half = values.dtype == np.float16
    scratch = np.empty((min(rows, len(values)), *values.shape[1:]), dtype=np.uint16) if half else None
    for start in range(0, len(values), rows):
        chunk = values[start : start + rows]
        if _nonfinite(chunk, scratch):
            _raise_nonfinite(chunk, start, path, where)


def _checks_file() -> Path:
    """Where files already found free of NaN/inf are remembered: finite_feature_files.json in the cache folder."""
    return cache_dir() / "finite_feature_files.json"


_SETTLED_SECONDS = 2.0
"""Files modified more recently than this are checked again next time rather than remembered."""


def finite_file_keys() -> set[str]:
    """Keys (see file_key) of every file remembered as free of NaN/inf."""
    import json

    try:
        return set(json.loads(_checks_file().read_text()))
    except (OSError, ValueError):
        return set()


def known_finite(path: Path) -> bool:
    """Whether `path`, unchanged since, was read whole and found free of NaN/inf before."""
    try:
        return file_key(path) in finite_file_keys()
    except OSError:
        return False


def remember_finite(paths: list[Path]) -> None:
    """Record `paths` as free of NaN/inf, in one atomic write of the cache (a cache that cannot be written is
    skipped). A file modified in the last few seconds is not recorded: file systems stamp mtimes coarsely (a few
    ms), and a rewrite within the same tick, of the same size, would otherwise look unchanged."""
    import json
    import time

    from glovita.runtime.io import save_json

    cache = _checks_file()
    try:
        settled = [path for path in paths if time.time() - path.stat().st_mtime >= _SETTLED_SECONDS]
        if not settled:
            return
        known = json.loads(cache.read_text()) if cache.is_file() else {}
        known = {k: v for k, v in known.items() if Path(k.split("|")[0]).exists()}  # forget deleted files
        known.update({file_key(path): True for path in settled})
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_json(known, cache)
    except (OSError, ValueError):
        pass


def _read_checked(features, path: Path) -> np.ndarray:
    """The whole `features` dataset (h5py) as one numpy array. A file not known to be finite is read a few MB at
    a time straight into place, each chunk checked for NaN/inf right after it is read (while it is still in the
    CPU cache), and remembered as finite (keyed by path, size and mtime); a known file is read in one call."""
    if known_finite(path):
        return features[:]
    array = np.empty(features.shape, dtype=features.dtype)
    if array.size == 0:
        return array
    rows = max(1, _READ_CHUNK_BYTES // max(1, array[:1].nbytes))
    half = array.dtype == np.float16
    scratch = np.empty((min(rows, len(array)), *array.shape[1:]), dtype=np.uint16) if half else None
    for start in range(0, len(array), rows):
        part = np.s_[start : min(start + rows, len(array))]
        features.read_direct(array, part, part)
        if _nonfinite(array[part], scratch):
            _raise_nonfinite(array[part], start, path, "whole file")
    remember_finite([path])
    return array


def _key_index(key: int | tuple[int, int]) -> int:
    """Dataset keys may carry a per-sample seed (index, seed); features need no seed."""
    return key[0] if isinstance(key, tuple) else key


class PrecomputedFeatureDataset(Dataset):
    """Samples of one feature file: (features (D,) or (n_i, D), target)."""

    def __init__(
        self, path: Path, layout: FeatureLayout, regression: bool, num_classes: int, load: str, framewise: bool = False
    ) -> None:
        import h5py

        self.path = path
        self.layout = layout
        self.regression = regression
        self.frame_targets: torch.Tensor | None = None
        """data.subtask framewise: a class per instance (M,), from the file's `frame_labels`."""
        with h5py.File(path, "r") as handle:
            labels = np.asarray(handle["labels"][:])
            if framewise:
                self.frame_targets = self._frame_targets(handle, num_classes)
            self.ids = (
                [i.decode() if isinstance(i, bytes) else str(i) for i in handle["ids"][:]] if "ids" in handle else None
            )
            nbytes = handle["features"].size * handle["features"].dtype.itemsize
        self.targets = self._targets(labels, num_classes)
        in_memory = load == "always" or (load == "auto" and nbytes < _MEMORY_FRACTION * _physical_memory())
        self._memory: np.ndarray | None = None
        """The whole file when loaded into memory. Kept as numpy: its fancy indexing gathers float16 rows about
        twice as fast as torch's."""
        if in_memory:
            with h5py.File(path, "r") as handle:
                self._memory = _read_checked(handle["features"], path)
        self._known_finite = in_memory or known_finite(path)
        """Rows read lazily need no NaN/inf check: the file was checked whole (now, or before unchanged)."""
        self._handle = None
        self._handle_pid = -1

    def _frame_targets(self, handle: Any, num_classes: int) -> torch.Tensor:
        rows = int(handle["features"].shape[0])
        if self.layout.offsets is None or "frame_labels" not in handle:
            raise ValueError(
                f"Feature file '{self.path}': data.subtask='framewise' needs variable-size bags (bag_ptr) of per-frame "
                "features with 'frame_labels' (one class per row), as glovita_extract_features writes them for a "
                "framewise video run."
            )
        values = np.asarray(handle["frame_labels"][:])
        if values.shape != (rows,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"Feature file '{self.path}': 'frame_labels' must hold one integer class per feature row "
                             f"({rows},); got {values.dtype} {values.shape}.")  # fmt: skip
        bad = np.unique(values[(values < 0) | (values >= num_classes)])
        if bad.size:
            raise ValueError(f"Feature file '{self.path}': frame labels {bad[:10].tolist()} are outside "
                             f"0..{num_classes - 1} (data.num_classes={num_classes}).")  # fmt: skip
        return torch.as_tensor(values, dtype=torch.long)

    def _targets(self, labels: np.ndarray, num_classes: int) -> torch.Tensor:
        if self.regression:
            values = torch.as_tensor(labels, dtype=torch.float32)
            values = values.reshape(len(values), -1)
            if values.shape[1] != num_classes:
                raise ValueError(
                    f"Feature file '{self.path}': 'labels' has {values.shape[1]} regression values per sample but "
                    f"data.num_classes={num_classes}. Set --data.num_classes {values.shape[1]}."
                )
            bad_rows = (~torch.isfinite(values)).any(dim=1).nonzero().flatten().tolist()
            if bad_rows:
                names = [self.ids[i] if self.ids else f"row {i}" for i in bad_rows[:5]]
                raise ValueError(
                    f"Feature file '{self.path}': {len(bad_rows)} regression label(s) are NaN or inf (e.g. "
                    f"{', '.join(names)}). Fix or remove those samples."
                )
            return values
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"Feature file '{self.path}': classification needs integer 'labels' of shape (N,), got "
                f"{labels.dtype} {labels.shape}. Store class indices, or use --data.task Regression."
            )
        bad = np.unique(labels[(labels < 0) | (labels >= num_classes)])
        if bad.size:
            raise ValueError(
                f"Feature file '{self.path}': labels {bad[:10].tolist()} are outside 0..{num_classes - 1} "
                f"(data.num_classes={num_classes}). Fix --data.num_classes."
            )
        return torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return self.layout.num_samples

    @property
    def in_memory(self) -> bool:
        """The whole file was read into memory (data.load_into_memory)."""
        return self._memory is not None

    def _features(self):
        """The in-memory tensor, or this process's own h5py handle (handles must not cross a fork)."""
        if self._memory is not None:
            return self._memory
        if self._handle is None or self._handle_pid != os.getpid():
            import h5py

            self._handle = h5py.File(self.path, "r")
            self._handle_pid = os.getpid()
        return self._handle["features"]

    def _rows(self, start: int, stop: int) -> torch.Tensor:
        source = self._features()
        if isinstance(source, np.ndarray):  # a copy: a batch never aliases the file held in memory
            return torch.from_numpy(source[start:stop].copy())
        rows = source[start:stop]
        if not self._known_finite:
            _check_finite(rows, self.path, f"rows {start}..{stop - 1}")
        return torch.from_numpy(rows)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = _key_index(key)
        offsets = self.layout.offsets
        if offsets is not None:
            start, stop = int(offsets[index]), int(offsets[index + 1])
            if self.frame_targets is not None:
                return self._rows(start, stop), self.frame_targets[start:stop]
            return self._rows(start, stop), self.targets[index]
        return self._rows(index, index + 1)[0], self.targets[index]

    def __getitems__(self, keys) -> list[tuple[torch.Tensor, torch.Tensor]] | tuple[torch.Tensor, torch.Tensor]:
        """A whole batch (a list of keys or an index tensor): instances come back already stacked by one fancy
        index, bags as a list of samples."""
        indices: Any
        if isinstance(keys, torch.Tensor):
            indices = keys
        else:
            indices = keys if not keys or isinstance(keys[0], int) else [_key_index(k) for k in keys]
        if self.layout.kind == "bags":
            return [self[i] for i in indices]
        source = self._features()
        if isinstance(source, np.ndarray):
            index = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(indices)
            return torch.from_numpy(source[index.numpy()]), self.targets[index]
        order = np.argsort(np.asarray(indices))
        rows = source[np.asarray(indices)[order]]  # h5py reads sorted indices only
        if not self._known_finite:
            _check_finite(rows, self.path, "a batch")
        restore = np.empty_like(order)
        restore[order] = np.arange(len(order))
        return torch.from_numpy(rows[restore]), self.targets[indices]


_STATISTICS_CHUNK = 65536
"""Instance rows (or bags) summed per step of feature_statistics."""


def feature_statistics(dataset: PrecomputedFeatureDataset, keep: list[int] | None = None) -> tuple[torch.Tensor, ...]:
    """Per-dimension mean and standard deviation (D,) over every instance of `dataset` (of the samples in `keep`
    only, e.g. a data_fraction subset), summed in float64 a chunk at a time; a constant dimension gets std 1."""
    layout = dataset.layout
    source = dataset._features()
    samples = np.arange(len(dataset)) if keep is None else np.sort(np.asarray(keep, dtype=np.int64))
    total = np.zeros(layout.feature_dim)
    squares = np.zeros(layout.feature_dim)
    count = 0
    for first in range(0, len(samples), _STATISTICS_CHUNK):
        chunk = samples[first : first + _STATISTICS_CHUNK]
        if layout.offsets is not None:
            offsets = layout.offsets
            block = np.concatenate([np.asarray(source[offsets[i] : offsets[i + 1]]) for i in chunk])
        elif keep is None:
            block = np.asarray(source[int(chunk[0]) : int(chunk[-1]) + 1])
        else:
            block = np.asarray(source[chunk])  # sorted indices: h5py reads them in one call
        values = block.reshape(-1, layout.feature_dim).astype(np.float64)
        total += values.sum(axis=0)
        squares += (values * values).sum(axis=0)
        count += len(values)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0))
    std[std < 1e-12] = 1.0
    return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> tuple:
    """What identifies a feature file's content cheaply: its size and a hash of its first and last MiB (files
    written apart differ there: HDF5 headers, the data's ends)."""
    import hashlib

    size = path.stat().st_size
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        digest.update(handle.read(chunk))
        if size > chunk:
            handle.seek(max(chunk, size - chunk))
            digest.update(handle.read(chunk))
    return size, digest.hexdigest()
