"""Time series: UCR/UEA `.ts` files, `.npz` arrays (X (N, C, T) or (N, T), y (N,)), and the UCR/UEA sets that
the aeon package ships. Series of unequal length are padded or resampled to one length; each is z-normalised
per channel (the UCR convention) or with the training split's per-channel statistics.
"""

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class SeriesFile:
    """The cases of one file: each series (C, T_i), its label (a class name or a float), and its name."""

    series: list[np.ndarray]
    labels: list[str] | list[float]
    names: list[str]
    class_labels: list[str] | None
    """The classes the file's header declares (`@classLabel true ...`), in its order; None when not declared."""
    labelled: bool = True
    """False for files without labels (`@classLabel false` / `@targetLabel false`; an .npz without y): their
    labels are '' (classes) or NaN (regression), for prediction only."""


def aeon_file(name: str, split: str) -> Path:
    """<aeon>/datasets/data/<name>/<name>_<SPLIT>.ts of the installed aeon package (no download, no import)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or spec.origin is None:
        raise ValueError(
            f"data.aeon_dataset={name!r} reads the UCR/UEA sets shipped inside the aeon package, which is not "
            "installed. Run: pip install -e '.[timeseries]'."
        )
    folder = Path(spec.origin).parent / "datasets" / "data"
    path = folder / name / f"{name}_{split.upper()}.ts"
    if not path.is_file():
        shipped = sorted(p.name for p in folder.iterdir() if any(p.glob("*_TRAIN.ts"))) if folder.is_dir() else []
        raise ValueError(
            f"data.aeon_dataset={name!r}: the installed aeon has no '{path.name}'. Sets it ships with .ts files: "
            f"{', '.join(shipped)}."
        )
    return path


def _value(text: str) -> float:
    """One value of a .ts case; '?' (the format's missing value) becomes NaN, refused by the caller."""
    return float("nan") if text.strip() == "?" else float(text)


def read_ts_file(path: Path, regression: bool) -> SeriesFile:
    """Read a UCR/UEA `.ts` file; every error names the file and the line (and the channel, where one is at fault).

    Cases are lines after `@data`: channels separated by ':', values by ',', the label (or regression target)
    last. Missing values ('?'), NaN and inf are refused."""
    if not path.is_file():
        raise FileNotFoundError(f"Time-series file '{path}' does not exist. Check the --data.*_file flags.")
    series: list[np.ndarray] = []
    labels: list = []
    names: list[str] = []
    class_labels: list[str] | None = None
    labelled = True
    in_data = False
    dimensions: int | None = None
    equal_length = False  # the header says @equalLength true
    declared_length: int | None = None  # its @seriesLength
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"'{path}' line {number}"
            if not in_data:
                words = line.split()
                key = words[0].lower()
                if key == "@data":
                    in_data = True
                elif key == "@classlabel" and len(words) > 2 and words[1].lower() == "true":
                    class_labels = words[2:]
                elif key in ("@classlabel", "@targetlabel") and len(words) > 1 and words[1].lower() == "false":
                    labelled = False
                elif key == "@equallength" and len(words) > 1:
                    equal_length = words[1].lower() == "true"
                elif key == "@serieslength" and len(words) > 1 and words[1].isdigit():
                    declared_length = int(words[1])
                elif key == "@timestamps" and len(words) > 1 and words[1].lower() == "true":
                    raise ValueError(f"{where}: series with time stamps are not supported; write plain values.")
                continue
            fields = line.split(":") + ([] if labelled else [""])
            if len(fields) < 2:
                raise ValueError(f"{where}: a case needs its values and a label separated by ':'.")
            channels = []
            for channel, text in enumerate(fields[:-1]):
                try:
                    values = np.array([_value(v) for v in text.split(",")], dtype=np.float64)
                except ValueError as err:
                    raise ValueError(f"{where}, channel {channel}: not a list of numbers ({err}).") from err
                if not np.isfinite(values).all():
                    raise ValueError(
                        f"{where} (case {len(series)}), channel {channel}: holds missing, NaN or infinite values "
                        f"(first at time step {int(np.argmin(np.isfinite(values)))}). Fill or drop that case."
                    )
                channels.append(values)
            lengths = {len(c) for c in channels}
            if len(lengths) > 1:
                counts = ", ".join(f"channel {i}: {len(c)}" for i, c in enumerate(channels))
                raise ValueError(
                    f"{where} (case {len(series)}) is ragged: its channels have different lengths ({counts}). "
                    "Every channel of a case needs the same number of values."
                )
            if dimensions is not None and len(channels) != dimensions:
                raise ValueError(
                    f"{where} (case {len(series)}) has {len(channels)} channels; the cases before it have {dimensions}."
                )
            dimensions = len(channels)
            expected = declared_length or (series[0].shape[-1] if series else None)
            if equal_length and expected is not None and len(channels[0]) != expected:
                declared = f"@seriesLength {expected}" if declared_length else f"the first case's {expected} steps"
                raise ValueError(
                    f"{where} (case {len(series)}) has {len(channels[0])} time steps; the file says @equalLength true "
                    f"({declared}). Fix the case, or write @equalLength false (then --data.series_length pads or "
                    "resamples it)."
                )
            label = fields[-1].strip()
            if not labelled:
                labels.append(float("nan") if regression else "")
            elif regression:
                try:
                    labels.append(float(label))
                except ValueError as err:
                    raise ValueError(f"{where}: regression target {label!r} is not a number.") from err
                if not np.isfinite(labels[-1]):
                    raise ValueError(f"{where}: regression target {label!r} is NaN or inf.")
            else:
                if class_labels is not None and label not in class_labels:
                    raise ValueError(
                        f"{where}: label {label!r} is not among the @classLabel classes ({', '.join(class_labels)})."
                    )
                labels.append(label)
            series.append(np.stack(channels))
            names.append(f"{path.name}:{len(series) - 1}")
    if not series:
        raise ValueError(f"Time-series file '{path}' holds no cases (no lines after @data).")
    return SeriesFile(series, labels, names, class_labels, labelled)


def read_npz_file(path: Path, regression: bool) -> SeriesFile:
    """An `.npz` with `X` (N, C, T) or (N, T) and `y` (N,)."""
    if not path.is_file():
        raise FileNotFoundError(f"Time-series file '{path}' does not exist. Check the --data.*_file flags.")
    with np.load(path, allow_pickle=False) as arrays:
        if "X" not in arrays:
            raise ValueError(f"'{path}' has no X array (arrays: {', '.join(arrays.files)}).")
        values = np.asarray(arrays["X"], dtype=np.float64)
        labelled = "y" in arrays
        targets = np.asarray(arrays["y"]) if labelled else np.full(len(values), np.nan)
    if targets.ndim != 1:
        hint = " (one-hot? store the class indices: y = y.argmax(1))" if targets.ndim == 2 else ""
        raise ValueError(f"'{path}': y must hold one label per case, shape (N,); it is {targets.shape}{hint}.")
    if values.ndim == 2:
        values = values[:, None, :]
    if values.ndim != 3 or len(values) != len(targets):
        raise ValueError(f"'{path}': X must be (N, C, T) or (N, T) with one y per case; got {values.shape}, y "
                         f"{targets.shape}.")  # fmt: skip
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        case, channel, step = bad[0].tolist()
        raise ValueError(
            f"'{path}' case {case}, channel {channel}: holds NaN or inf (first at time step {step}). "
            "Fill or drop that case."
        )
    if not labelled:
        labels: list = [float("nan") if regression else ""] * len(values)
    else:
        labels = _regression_targets(targets.tolist(), path) if regression else [str(t) for t in targets]
    return SeriesFile(list(values), labels, [f"{path.name}:{i}" for i in range(len(values))], None, labelled)


def _regression_targets(raw: Sequence[object], where: Path, names: Sequence[str] | None = None) -> list[float]:
    """Regression targets as floats; a value that is not a finite number is refused naming the file and case."""
    values = []
    for index, value in enumerate(raw):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = float("nan")
        if not math.isfinite(number):
            case = names[index] if names is not None else f"case {index}"
            raise ValueError(
                f"'{where}' {case}: regression target {value!r} is not a finite number. Fix or drop that case."
            )
        values.append(number)
    return values


def _number(text: str) -> bool:
    try:
        _value(text)
    except ValueError:
        return False
    return True


def _read_csv_case(path: Path) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """One series from a CSV file: a row per time step, a column per channel, an optional header row (no cell of
    it a number); returns the values (C, T) and the header."""
    import csv

    rows: list[list[float]] = []
    header: tuple[str, ...] | None = None
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                values = [_value(cell) for cell in row]
            except ValueError as err:
                if not rows and header is None and not any(_number(cell) for cell in row):
                    header = tuple(cell.strip() for cell in row)
                    continue
                raise ValueError(f"'{path}' line {number}: not a row of numbers ({err}).") from err
            if rows and len(values) != len(rows[0]):
                raise ValueError(
                    f"'{path}' line {number} is ragged: {len(values)} values, the rows before it have {len(rows[0])} "
                    "(one column per channel)."
                )
            rows.append(values)
    if not rows:
        raise ValueError(f"'{path}' holds no rows of numbers.")
    values = np.asarray(rows, dtype=np.float64).T  # (C, T)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        channel, step = bad[0].tolist()
        raise ValueError(f"'{path}' channel (column) {channel}: holds missing, NaN or infinite values (first at time "
                         f"step {step}). Fill or drop that file.")  # fmt: skip
    return values, header


def _check_headers(files: Sequence[Path], headers: Sequence[tuple[str, ...] | None]) -> None:
    """The CSV series of one folder all have the same header row, or none has one: a first row that differs (a
    typo in one file's first values, taken for a header) is refused naming the file, not dropped."""
    from collections import Counter

    usual, count = Counter(headers).most_common(1)[0]
    odd = [(f, h) for f, h in zip(files, headers, strict=True) if h != usual]
    if odd:
        path, header = odd[0]
        shown = f"has the header row '{','.join(header)}'" if header is not None else "has no header row"
        others = f"the header row '{','.join(usual)}'" if usual is not None else "no header row"
        raise ValueError(
            f"'{path}' {shown}; {count} of the {len(files)} series files in its folder have {others}. Fix its first "
            "row (a mistyped number is not a header)."
        )


def read_csv_folder(folder: Path, labels_file: Path | None, regression: bool) -> SeriesFile:
    """A folder of per-series CSV files (time steps x channels) with labels from `labels_file`: a CSV with
    columns id (the file name without .csv) and label."""
    import csv

    if labels_file is None:
        raise ValueError(f"'{folder}' is a folder of CSV series; its labels come from --data.labels_file "
                         "(a CSV with columns id,label).")  # fmt: skip
    if not labels_file.is_file():
        raise FileNotFoundError(f"data.labels_file '{labels_file}' does not exist.")
    with labels_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id", "label"} <= set(reader.fieldnames):
            raise ValueError(f"data.labels_file '{labels_file}' needs the columns id and label (has: "
                             f"{', '.join(reader.fieldnames or [])}).")  # fmt: skip
        labels = {row["id"]: row["label"] for row in reader}
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise ValueError(f"'{folder}' holds no .csv files.")
    missing = [f.stem for f in files if f.stem not in labels]
    if missing:
        raise ValueError(f"data.labels_file '{labels_file}' has no label for {len(missing)} series of '{folder}' "
                         f"(e.g. {', '.join(missing[:5])}).")  # fmt: skip
    read = [_read_csv_case(f) for f in files]
    series = [values for values, _ in read]
    _check_headers(files, [header for _, header in read])
    channels = {s.shape[0] for s in series}
    if len(channels) > 1:
        counts = ", ".join(f"{f.name}: {s.shape[0]}" for f, s in list(zip(files, series, strict=True))[:5])
        raise ValueError(f"The CSV series of '{folder}' have different numbers of columns ({counts}, ...).")
    raw = [labels[f.stem] for f in files]
    names = [f"id {f.stem!r}" for f in files]
    values: list[str] | list[float] = _regression_targets(raw, labels_file, names) if regression else raw
    return SeriesFile(series, values, [f.name for f in files], None)


def read_series_file(path: Path, regression: bool, labels_file: Path | None = None) -> SeriesFile:
    """A .ts file, an .npz file, or a folder of per-series CSV files (labels from `labels_file`)."""
    if path.is_dir():
        return read_csv_folder(path, labels_file, regression)
    if path.suffix == ".ts":
        return read_ts_file(path, regression)
    if path.suffix == ".npz":
        return read_npz_file(path, regression)
    raise ValueError(
        f"'{path}': time series are read from .ts (UCR/UEA) or .npz files or a folder of CSV files, not "
        f"{path.suffix!r}."
    )


def to_length(series: list[np.ndarray], length: int, policy: str) -> np.ndarray:
    """Series (C, T_i) -> one array (N, C, length): `pad` appends zeros (after normalisation, so the padding is
    the series' mean), `pad_mask` appends NaN (the modality turns it into zeros plus a mask), both refuse longer
    series; `resample` interpolates each series linearly to `length`."""
    fill = np.nan if policy == "pad_mask" else 0.0
    out = np.full((len(series), series[0].shape[0], length), fill, dtype=np.float64)
    for i, values in enumerate(series):
        steps = values.shape[1]
        if policy == "resample" and steps != length:
            old = np.linspace(0.0, 1.0, steps)
            new = np.linspace(0.0, 1.0, length)
            out[i] = np.stack([np.interp(new, old, channel) for channel in values])
        elif steps > length:
            raise ValueError(
                f"Series {i} has {steps} time steps, more than data.series_length={length}. Raise "
                "--data.series_length, or pass --data.length_policy resample."
            )
        else:
            out[i, :, :steps] = values
    return out


def normalise_each(series: list[np.ndarray]) -> list[np.ndarray]:
    """Z-normalise every channel of every series on its own (a constant channel becomes zeros)."""
    result = []
    for values in series:
        std = values.std(axis=1, keepdims=True)
        result.append((values - values.mean(axis=1, keepdims=True)) / np.where(std < 1e-8, 1.0, std))
    return result


def channel_statistics(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (C, 1) over every time step of every training series."""
    joined = np.concatenate(series, axis=1)
    std = joined.std(axis=1, keepdims=True)
    return joined.mean(axis=1, keepdims=True), np.where(std < 1e-8, 1.0, std)


class SeriesDataset(Dataset):
    """(series (C, T) float32, target) samples held in memory."""

    def __init__(self, values: np.ndarray, targets: torch.Tensor, names: list[str], labelled: bool = True) -> None:
        self.values = torch.from_numpy(values.astype(np.float32))
        self.targets = targets
        self.sample_names = names
        self.labelled = labelled
        """False for a file without labels (targets are -1 or NaN placeholders, for prediction only)."""

    @property
    def in_memory(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else key
        return self.values[index], self.targets[index]
