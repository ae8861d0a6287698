"""Progress bars (quiet when stderr is not a terminal) and the end-of-run summary table."""

import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

_console = Console(stderr=True)
_quiet = False
"""Set on the non-zero ranks of a multi-process run: only rank 0 talks."""


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


BAR_REFRESH_SECONDS = 0.5
"""A terminal's progress bar is refreshed at most this often (on time, not every N steps)."""
PLAIN_LINE_SECONDS = 30.0
"""Without a terminal (a log file, a cluster job), a plain progress line is printed this often within an epoch."""


class Bar:
    """A progress display: a rich bar on a terminal, a plain line every PLAIN_LINE_SECONDS elsewhere, or nothing
    (non-zero ranks)."""

    def __init__(
        self, progress: Progress | None, task: TaskID | None, plain: str = "", total: int = 0, initial: int = 0
    ) -> None:
        self._progress = progress
        self._task = task
        self._plain = plain
        self._total = total
        self._done = initial
        self._first = initial
        self._started = time.perf_counter()
        self._last = self._started

    @property
    def active(self) -> bool:
        """False when nothing is shown, so callers can skip work (such as reading the loss back) for it."""
        return self._progress is not None or bool(self._plain)

    def due(self, last: bool = False) -> bool:
        """Whether an update would be shown now: a bar on time (and at its last step), a plain line every
        PLAIN_LINE_SECONDS (not at the last step: the epoch's own line follows)."""
        now = time.perf_counter()
        if self._progress is not None:
            return last or now - self._last >= BAR_REFRESH_SECONDS
        return bool(self._plain) and not last and now - self._last >= PLAIN_LINE_SECONDS

    def update(self, advance: int, info: str = "") -> None:
        """Advance by `advance`; a bar shows it, a plain line is printed only when one is due."""
        self._done += advance
        now = time.perf_counter()
        if self._progress is not None and self._task is not None:
            self._last = now
            self._progress.update(self._task, advance=advance, info=info)
        elif self._plain and now - self._last >= PLAIN_LINE_SECONDS and self._done < self._total:
            self._last = now
            rate = (self._done - self._first) / max(self._last - self._started, 1e-9)
            left = (self._total - self._done) / rate if rate > 0 else float("nan")
            eta = f"  ~{int(left // 60)}m {int(left % 60):02d}s left" if math.isfinite(left) else ""
            print_line(f"{self._plain}  {self._done}/{self._total}  {info}{eta}")


@contextmanager
def progress_bar(description: str, total: int, initial: int = 0) -> Iterator[Bar]:
    """A transient bar with a free-text info column, `initial` of `total` done, on a terminal; elsewhere a plain line
    every PLAIN_LINE_SECONDS; nothing on quiet ranks."""
    if _quiet:
        yield Bar(None, None)
        return
    if not sys.stderr.isatty():
        yield Bar(None, None, plain=description, total=total, initial=initial)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total, completed=initial, info="")
        yield Bar(progress, task, total=total, initial=initial)


class _RunLog:
    """The run's train.log: lines wait in memory until the run has made its directory (a run refused before that
    leaves no folder behind), then go to the file, a line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[str] = []
        self.handle: TextIO | None = None

    def write(self, text: str) -> None:
        if self.handle is None:
            if not self.path.parent.is_dir():
                self.pending.append(text)
                return
            self.handle = self.path.open("a", encoding="utf-8")
            if self.handle.tell():  # a resumed run continues the file
                self.handle.write(f"--- {datetime.now().isoformat(timespec='seconds')} ---\n")
            self.handle.writelines(line + "\n" for line in self.pending)
            self.pending = []
        self.handle.write(text + "\n")
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


_log: _RunLog | None = None
"""The open run's train.log (rank 0): every printed line is appended to it too."""


@contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Append what the run prints (print_line, the summary) to `path` as plain text until the block ends."""
    global _log
    previous, _log = _log, _RunLog(path)
    try:
        yield
    finally:
        _log.close()
        _log = previous


def _to_log(text: str) -> None:
    if _log is not None:
        _log.write(text)


def print_line(text: str) -> None:
    """One line of the run's log on stderr, never wrapped (a log file gets each line whole, without control
    characters; a terminal wraps long lines itself); also appended to the run's train.log."""
    if not _quiet:
        _console.print(text, highlight=False, soft_wrap=True)
        _to_log(text)


def print_summary(test_metrics: dict[str, float], wall_seconds: float, run_dir: Path, best: str = "") -> None:
    """Test metrics (per-class values left out), wall time, the best checkpoint's epoch (`best`, a phrase) and the
    run directory, on stdout."""
    table = Table(title="GloViTa run summary", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in test_metrics.items():
        if "_class_" not in key:
            table.add_row(key, f"{value:.4f}")
    table.add_row("wall time (s)", f"{wall_seconds:.1f}")
    if best:
        table.add_row("best.pt", best)
    console = Console()
    console.print(table)
    console.print(f"Run directory: {run_dir}", highlight=False, soft_wrap=True)
    for key, value in test_metrics.items():
        if "_class_" not in key:
            _to_log(f"{key} {value:.4f}")
    _to_log(f"wall time {wall_seconds:.1f} s")
    if best:
        _to_log(f"best.pt {best}")
