"""Per-bag attention files written by glovita_infer for MIL runs and read by glovita_mil_heatmap.

HDF5: `attention` (N, A) float32, one column per attention branch (abmil and clam_sb: 1; clam_mb: one per class),
`coords` (N, 2) when the slide's features had them, attributes `slide_id`, `branches` (names), `prediction`
and `target` (when known). CSV: columns instance, [x, y,] then one attention column per branch.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glovita.runtime.io import atomic_path


@dataclass(frozen=True)
class AttentionRecord:
    """One bag's attention: scores (N, A), branch names (A,), coords (N, 2) or None, and what was predicted."""

    slide_id: str
    scores: np.ndarray
    branches: list[str]
    coords: np.ndarray | None
    prediction: str
    target: str | None


def branch_names(branches: int, class_names: list[str]) -> list[str]:
    """One branch: 'attention'; one per class (clam_mb): the class names."""
    if branches == 1:
        return ["attention"]
    if len(class_names) == branches:
        return [f"attention_{name}" for name in class_names]
    return [f"attention_{i}" for i in range(branches)]


def file_stem(slide_id: str) -> str:
    """A file name for a slide id (ids of single-file bag layouts may hold '/' or odd characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", slide_id).strip("._") or "bag"


def write_attention(record: AttentionRecord, folder: Path, file_format: str) -> Path:
    """Write one bag's attention atomically as OUTPUT/<slide_id>.h5 or .csv; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_stem(record.slide_id)}.{file_format}"
    if file_format == "h5":
        import h5py

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.create_dataset("attention", data=record.scores.astype(np.float32))
            if record.coords is not None:
                handle.create_dataset("coords", data=record.coords)
            handle.attrs.update(slide_id=record.slide_id, branches=record.branches, prediction=record.prediction)
            if record.target is not None:
                handle.attrs["target"] = record.target
        return path
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instance", *(["x", "y"] if record.coords is not None else []), *record.branches])
        for i, scores in enumerate(record.scores.tolist()):
            position = [] if record.coords is None else [int(v) for v in record.coords[i]]
            writer.writerow([i, *position, *(f"{v:.6g}" for v in scores)])
    return path


def read_attention(path: Path) -> AttentionRecord:
    """An attention file written by write_attention; errors name the file and what is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"attention_file '{path}' does not exist. glovita_infer writes them to "
                                "OUTPUT_DIR/attention/ for MIL runs.")  # fmt: skip
    if path.suffix == ".h5":
        import h5py

        try:
            handle = h5py.File(path, "r")
        except OSError as err:
            raise ValueError(f"attention_file '{path}' is not a readable HDF5 file ({err}).") from err
        with handle:
            if "attention" not in handle:
                raise ValueError(f"attention_file '{path}' has no 'attention' dataset; it was not written by "
                                 "glovita_infer.")  # fmt: skip
            scores = np.asarray(handle["attention"][()], dtype=np.float32).reshape(len(handle["attention"]), -1)
            coords = np.asarray(handle["coords"][()]) if "coords" in handle else None
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        branches = [str(b.decode() if isinstance(b, bytes) else b) for b in attrs.get("branches", [])]
        target = attrs.get("target")
        return AttentionRecord(
            str(attrs.get("slide_id", path.stem)),
            scores,
            branches or [f"attention_{i}" for i in range(scores.shape[1])],
            coords,
            str(attrs.get("prediction", "")),
            None if target is None else str(target),
        )
    if path.suffix != ".csv":
        raise ValueError(f"attention_file '{path}' must be an .h5 or .csv file written by glovita_infer.")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    branches = [c for c in columns if c.startswith("attention")]
    if not branches:
        raise ValueError(f"attention_file '{path}' has no attention column (columns: {', '.join(columns)}).")
    scores = np.array([[float(row[b]) for b in branches] for row in rows], dtype=np.float32).reshape(-1, len(branches))
    coords = np.array([[int(row["x"]), int(row["y"])] for row in rows]) if {"x", "y"} <= set(columns) else None
    return AttentionRecord(path.stem, scores, branches, coords, "", None)
