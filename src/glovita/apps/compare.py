"""`glovita_compare`: many run directories as one table (CSV + Markdown + the terminal).

A row per run: its folder, the config settings whose values differ between the runs (flattened to dotted names),
status, best epoch and its validation metric, test metrics, wall time and median training throughput.
"""

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glovita.configs.base import dotted_fields
from glovita.configs.compare import CompareConfig
from glovita.reports.html import write_compare_report
from glovita.runtime.io import atomic_path, read_json, read_metrics, read_scores
from glovita.runtime.progress import print_line

_NOT_SETTINGS = (
    "group",
    "experiments_dir",
    "training.resume",
    "training.resume_mode",
    "training.checkpoint_every_n_steps",
    "training.checkpoint_every_n_minutes",
    "training.time_limit",
)
"""Config fields that name, place, checkpoint or time a run rather than change what it computes."""
_ASCENDING = ("loss", "ece", "mae", "mse", "rmse", "seconds")
"""Column names containing these sort smallest first."""


@dataclass(frozen=True)
class RunRow:
    path: Path
    settings: dict[str, str]
    values: dict[str, Any]
    """status, best_epoch, best metric, test metrics, wall_seconds, samples_per_second."""


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories among `paths`: each path that holds config.json, else every such folder below it."""
    if not paths:
        raise ValueError("Name the runs to compare, e.g. glovita_compare experiments/digits/*/0 (run directories, "
                         "or folders holding them).")  # fmt: skip
    runs: list[Path] = []
    expanded: list[Path] = []
    for path in paths:  # a quoted glob (or one the shell did not expand) is expanded here
        pattern = str(path)
        if not path.exists() and any(c in pattern for c in "*?["):
            import glob

            expanded += [Path(p) for p in sorted(glob.glob(pattern))] or [path]
        else:
            expanded.append(path)
    for path in expanded:
        if not path.exists():
            raise FileNotFoundError(f"'{path}' does not exist.")
        if (path / "config.json").is_file():
            runs.append(path)
            continue
        found = sorted(p.parent for p in path.rglob("config.json") if (p.parent / "runtime_info.json").is_file())
        if not found:
            raise ValueError(f"'{path}' is not a run directory and holds none (no config.json below it).")
        runs.extend(found)
    unique = list(dict.fromkeys(p.resolve() for p in runs))
    if not unique:
        raise ValueError("No run directory given.")
    return unique


def read_run(run: Path) -> RunRow:
    """What one run directory says about itself (missing files give empty cells, not errors)."""
    config = read_json(run / "config.json")
    resolved = read_json(run / "resolved_config.json")
    info = read_json(run / "runtime_info.json")
    tested = read_scores(run / "test_metrics.json")
    values: dict[str, Any] = {"status": info.get("status", "unknown")}
    epochs = read_metrics(run)
    metric, mode = str(resolved.get("best_metric", "")), resolved.get("best_metric_mode", "min")
    scored = [e for e in epochs if isinstance(e.get(metric), int | float) and not math.isnan(e[metric])]
    if scored:
        best = (min if mode == "min" else max)(scored, key=lambda e: e[metric])
        values["best_epoch"] = int(best["epoch"]) + 1  # as the epoch lines count (1-based)
        values[f"best_{metric}"] = best[metric]
    values["epochs"] = len(epochs)
    values.update({k: v for k, v in tested.items() if "_class_" not in k})
    if "wall_seconds" in info:
        values["wall_seconds"] = info["wall_seconds"]
    speeds = [e["train_samples_per_second"] for e in epochs if e.get("train_samples_per_second")]
    if speeds:
        values["samples_per_second"] = statistics.median(speeds)
    settings = {k: _text(v) for k, v in dotted_fields(config).items() if k not in _NOT_SETTINGS}
    return RunRow(run, settings, values)


def _text(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) >= 1000 else f"{value:.4f}"
    return "" if value is None else str(value)


def _sort_key(column: str):
    ascending = any(word in column for word in _ASCENDING)

    def key(row: dict[str, Any]) -> tuple[int, float | str]:
        value = row.get(column)
        if isinstance(value, int | float) and not math.isnan(value):
            return (0, value if ascending else -value)
        return (1, "") if value in (None, "") else (0, str(value))

    return key


def compare_runs(cfg: CompareConfig) -> tuple[list[str], list[dict[str, Any]], Path, Path]:
    """Write compare.csv, compare.md and compare.html (curves overlaid) and print the table; returns (columns, rows,
    csv, markdown)."""
    runs = [read_run(path) for path in find_runs(cfg.runs)]
    names = sorted({k for r in runs for k in r.settings})
    differing = [k for k in names if len({r.settings.get(k, "-") for r in runs}) > 1]
    parent = Path(*_common_parts([r.path for r in runs]))
    value_columns = list(dict.fromkeys(k for r in runs for k in r.values))
    columns = ["run", *differing, *value_columns]
    rows = []
    for run in runs:
        name = run.path.relative_to(parent).as_posix() if run.path != parent else run.path.name
        rows.append({"run": name or ".", **{k: run.settings.get(k, "-") for k in differing}, **run.values})
    ordered = list(runs)
    if cfg.sort is not None:
        if cfg.sort not in columns:
            raise ValueError(f"sort={cfg.sort!r} is not a column; columns: {', '.join(columns)}.")
        by = _sort_key(cfg.sort)
        order = sorted(range(len(rows)), key=lambda i: by(rows[i]))
        rows, ordered = [rows[i] for i in order], [runs[i] for i in order]
    out = cfg.output_dir or parent
    csv_path, md_path = out / "compare.csv", out / "compare.md"
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([[_cell(row.get(c)) for c in columns] for row in rows])
    table = [
        "| " + " | ".join(_markdown(c) for c in columns) + " |",
        "|" + "|".join("---:" if c in value_columns and c != "status" else "---" for c in columns) + "|",
    ]
    table += ["| " + " | ".join(_markdown(_cell(row.get(c))) for c in columns) + " |" for row in rows]
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(table) + "\n")
    curves = {str(row["run"]): read_metrics(run.path) for row, run in zip(rows, ordered, strict=True)}
    html_path = write_compare_report(out / "compare.html", columns, rows, curves)
    _print(columns, rows, parent)
    print_line(f"{len(rows)} runs -> {csv_path}, {md_path}, {html_path}")
    return columns, rows, csv_path, md_path


def _common_parts(paths: list[Path]) -> tuple[str, ...]:
    parts = [p.parts for p in paths]
    common: list[str] = []
    for group in zip(*parts, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    if len(paths) == 1:  # a single run: its parent holds the table
        common = list(paths[0].parent.parts)
    return tuple(common) or ("/",)


CELL_WIDTH = 24
"""A printed cell (a setting's value, a run's name) longer than this is shortened in the middle."""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: (width - 1) // 2] + "…" + text[-(width - 1 - (width - 1) // 2) :]


def _header(column: str) -> str:
    """A setting's dotted name shortened to its last parts (`model.encoder.drop_path_rate` -> `drop_path_rate`
    when that is unambiguous enough to read; the CSV and HTML keep full names)."""
    parts = column.split(".")
    while len(parts) > 1 and len(".".join(parts)) > CELL_WIDTH - 4:
        parts = parts[1:]
    return _fit(".".join(parts), CELL_WIDTH)


def terminal_width() -> int | None:
    """Columns of the terminal stdout writes to (COLUMNS when set); None when stdout is a file or pipe."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _print(columns: list[str], rows: list[dict[str, Any]], parent: Path) -> None:
    """An aligned plain-text table, one line per run: long names and values shortened in the middle, and on a
    terminal only the columns that fit its width (the rest named; the files hold every column)."""
    cells = [[_header(c) for c in columns], *[[_fit(_cell(row.get(c)), CELL_WIDTH) for c in columns] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    limit = terminal_width()
    shown = len(columns)
    if limit is not None:
        used = 0
        for index, width in enumerate(widths):
            used += width + (2 if index else 0)
            if used > limit and index > 0:
                shown = index
                break
    lines = ["  ".join(text.ljust(width) for text, width in zip(line[:shown], widths[:shown], strict=True)).rstrip()
             for line in cells]  # fmt: skip
    if shown < len(columns):
        hidden = columns[shown:]
        lines.append(f"({len(hidden)} more column(s) in compare.csv: {', '.join(hidden[:6])}"
                     + (", …" if len(hidden) > 6 else "") + ")")  # fmt: skip
    print_line(f"Runs under {parent}:\n" + "\n".join(lines))


def _markdown(text: str) -> str:
    """A table cell as Markdown text: HTML escaped (values such as --add_log ones may hold tags, which Markdown
    viewers would render or run), pipes escaped, newlines flattened."""
    import html

    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
