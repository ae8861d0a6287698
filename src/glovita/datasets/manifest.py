"""CSV manifests (data.split_source csv): one CSV with a split column, or a folder of train.csv / valid.csv /
test.csv, each row an input file (relative to its CSV) with one target column per task. Layout:
docs/datasets/DATASET_STRUCTURE.md."""

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

SPLIT_SPELLINGS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
"""Values of the split column (case-insensitive) and the split each names."""
SPLIT_FILES = {"train": ("train.csv",), "val": ("valid.csv", "val.csv"), "test": ("test.csv",)}
"""A manifest folder's files per split: train.csv is required, the others optional."""


@dataclass(frozen=True)
class TargetColumn:
    """A manifest column read as a sample field of the same name (a named head's targets): class indices or names
    (`classes`), or `num_outputs` numbers separated by ';'. An empty cell is "no label": class -1, values NaN. With
    `paths`, the column names a file per row (a label-free target, relative to the CSV's folder), which must exist."""

    column: str
    classes: bool
    num_outputs: int
    paths: bool = False


@dataclass(frozen=True)
class Manifest:
    """Rows per split as (input path, main target), each row's further fields, and the class names found."""

    splits: dict[str, list[tuple[Path, Any]]]
    fields: dict[Path, dict[str, Any]]
    class_names: list[str]
    """The main column's classes in index order ([] for regression or without labels)."""
    column_classes: dict[str, list[str]] = field(default_factory=dict)
    """Each class column's class names in index order."""


@dataclass(frozen=True)
class _Row:
    where: str
    """'<csv> line <n>', for messages."""
    split: str
    cells: dict[str, str]
    folder: Path


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(columns, [(line number, row)]) of a CSV: comma, ';' or tab separated, a byte-order mark ignored, cells
    stripped, blank lines skipped."""
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:  # one column, or nothing to tell: the default comma
            dialect = csv.excel
        reader = csv.DictReader(handle, dialect=dialect)
        rows = []
        for row in reader:
            if any((value or "").strip() for value in row.values()):  # blank lines are skipped
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}))
        return list(reader.fieldnames or []), rows


def _rows(location: Path, split_column: str, needed: list[tuple[str, str]]) -> list[_Row]:
    """Every row of the manifest at `location` (a CSV with `split_column`, or a folder of split CSVs); `needed`:
    (column, how to name another) pairs each CSV must have."""
    if location.is_dir():
        files: list[tuple[str, Path]] = []
        for split, names in SPLIT_FILES.items():
            found = [location / name for name in names if (location / name).is_file()]
            if split == "train" and not found:
                raise FileNotFoundError(
                    f"data.manifest_file: the folder '{location}' has no train.csv. A manifest folder holds "
                    "train.csv, valid.csv (or val.csv) and test.csv; or point --data.manifest_file at one CSV with a "
                    "split column."
                )
            files += [(split, path) for path in found[:1]]
    elif location.is_file():
        files = [("", location)]
        needed = [*needed, (split_column, "Set --data.csv_split_column")]
    else:
        raise FileNotFoundError(
            f"data.manifest_file: '{location}' does not exist. Point --data.manifest_file at the manifest CSV (or a "
            "folder of train.csv / valid.csv / test.csv), relative to --data.data_root_dir."
        )
    rows = []
    for split, path in files:
        columns, table = read_csv_rows(path)
        for column, fix in needed:
            if column not in columns:
                raise ValueError(f"Manifest '{path}' has no column {column!r} (columns: {', '.join(columns)}). {fix}.")
        for line, cells in table:
            where = f"'{path}' line {line}"
            name = split
            if not split:
                name = SPLIT_SPELLINGS.get(cells[split_column].lower(), "")
                if not name:
                    raise ValueError(
                        f"{where}, column {split_column!r}: {cells[split_column]!r} is not a split. Use train, val "
                        "(or valid) or test."
                    )
            rows.append(_Row(where, name, cells, path.parent))
    return rows


def _input_path(row: _Row, column: str, what: str = "input") -> Path:
    text = row.cells[column]
    if not text:
        raise ValueError(f"{row.where}, column {column!r}: the {what} path is empty. Name the file or drop the row.")
    path = Path(text) if Path(text).is_absolute() else row.folder / text
    if not path.is_file():
        raise FileNotFoundError(
            f"{row.where}, column {column!r}: '{path}' does not exist (paths are relative to the CSV's folder). Fix "
            "the path or drop the row."
        )
    return path


def _parse_values(text: str, where: str, column: str, num_outputs: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(";"))
    except ValueError:
        raise ValueError(
            f"{where}, column {column!r}: {text!r} is not a number. Write numbers (several separated by ';'), or "
            "leave the cell empty for no label."
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}, column {column!r}: {text!r} is not a finite number. Fix it, or leave the cell "
                         "empty for no label.")  # fmt: skip
    if len(values) != num_outputs:
        raise ValueError(
            f"{where}, column {column!r}: {len(values)} value(s) but the task has {num_outputs} output(s). Write "
            f"{num_outputs} numbers separated by ';'."
        )
    return values


def _parse_classes(
    cells: list[tuple[str, str]], column: str, num_classes: int, what: str
) -> tuple[list[int], list[str]]:
    """Class indices of (where, text) cells ('' = -1, no label): integers are indices, anything else class names
    (sorted); `what` names the setting of the class count."""
    given = [text for _, text in cells if text]
    if all(text.lstrip("-").isdigit() for text in given):
        for where, text in cells:
            if text and not 0 <= int(text) < num_classes:
                raise ValueError(
                    f"{where}, column {column!r}: class index {text} is outside 0..{num_classes - 1} ({what}="
                    f"{num_classes}). Fix the cell or {what}."
                )
        return [int(text) if text else -1 for _, text in cells], [str(k) for k in range(num_classes)]
    index = class_index(given, num_classes, f"column {column!r} of the manifest", what, "Set it to")
    return [index[text] if text else -1 for _, text in cells], list(index)


def class_index(labels: Iterable[str], num_classes: int, found_in: str, setting: str, fix: str) -> dict[str, int]:
    """Class names -> indices in sorted order; their count must be `num_classes` (`setting`), else the message
    names `found_in`, the classes found and `fix` followed by their count."""
    names = sorted(set(labels))
    if len(names) != num_classes:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise ValueError(
            f"{setting}={num_classes} but {found_in} has {len(names)} classes ({shown}). {fix} {len(names)}."
        )
    return {name: k for k, name in enumerate(names)}


@dataclass(frozen=True)
class ManifestSource:
    """Where a manifest is and how to read it: `label_column` None reads no main target (segmentation, per-frame
    labels: target 0); `columns` are the further target columns (named heads')."""

    location: Path
    input_column: str
    split_column: str
    label_column: str | None
    regression: bool
    num_classes: int
    columns: list[TargetColumn]


def read_manifest(source: ManifestSource) -> Manifest:
    """The rows of a manifest with their files checked and their targets parsed. A main label cell must be filled;
    a further column's empty cell means "no label for that task"."""
    location, input_column, split_column = source.location, source.input_column, source.split_column
    label_column, regression, num_classes, columns = (
        source.label_column, source.regression, source.num_classes, source.columns
    )  # fmt: skip
    needed = [(input_column, "Set --data.csv_id_column")]
    if label_column is not None:
        needed.append((label_column, "Set --data.csv_label_column"))
    needed += [(c.column, "A named head reads the column its model.heads.<name>.target_field names") for c in columns]
    rows = _rows(location, split_column, needed)
    paths = [_input_path(row, input_column) for row in rows]
    main: list[Any] = [0] * len(rows)
    class_names: list[str] = []
    if label_column is not None:
        for row in rows:
            if not row.cells[label_column]:
                raise ValueError(
                    f"{row.where}, column {label_column!r}: the main label is empty. Fill it or drop the row; a task "
                    "whose labels may be missing is a named head (model.heads), which leaves such rows out of its "
                    "loss."
                )
        if regression:
            main = [_parse_values(row.cells[label_column], row.where, label_column, num_classes) for row in rows]
        else:
            cells = [(row.where, row.cells[label_column]) for row in rows]
            main, class_names = _parse_classes(cells, label_column, num_classes, "data.num_classes")
    fields: dict[Path, dict[str, Any]] = {path: {} for path in paths}
    column_classes: dict[str, list[str]] = {}
    for target in columns:
        cells = [(row.where, row.cells[target.column]) for row in rows]
        if target.paths:
            for path, row in zip(paths, rows, strict=True):
                fields[path][target.column] = _input_path(row, target.column, "target")
        elif target.classes:
            indices, names = _parse_classes(cells, target.column, target.num_outputs, f"model.heads' num_outputs of "
                                            f"{target.column!r}")  # fmt: skip
            column_classes[target.column] = names
            for path, value in zip(paths, indices, strict=True):
                fields[path][target.column] = value
        else:
            missing = (math.nan,) * target.num_outputs
            for path, (where, text) in zip(paths, cells, strict=True):
                values = _parse_values(text, where, target.column, target.num_outputs) if text else missing
                fields[path][target.column] = torch.tensor(values, dtype=torch.float32)
    splits: dict[str, list[tuple[Path, Any]]] = {"train": [], "val": [], "test": []}
    for row, path, target_value in zip(rows, paths, main, strict=True):
        splits[row.split].append((path, target_value))
    return Manifest(splits, fields, class_names, column_classes)
