"""Where a command's time goes: named marks on one clock. The first run of a process counts from the process's
start (Linux: its start time in /proc), so the interpreter and the imports are in it; later runs of the same
process (cross-validation folds, sweep trials) count from their own start. `glovita_train` prints the start-up
part (to the first training step) and writes every part to runtime_info.json `timeline_seconds`."""

import os
import time

_early: list[tuple[str, float]] = []
"""Marks made before a run exists (the CLI: imports done, config parsed)."""
_runs = 0


def _process_start() -> float | None:
    """The process's start on time.perf_counter's clock (CLOCK_MONOTONIC on Linux), or None where unknown."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime: clock ticks after boot
    except (OSError, ValueError, IndexError):
        return None
    return started if 0 <= time.perf_counter() - started < 3600 else None  # not the same clock: unknown


def mark_early(name: str) -> None:
    """A mark before the run starts (kept for the process's first run only)."""
    if _runs == 0 and all(done != name for done, _ in _early):
        _early.append((name, time.perf_counter()))


class Timeline:
    """Marks of one run: each mark's share is the time since the previous one."""

    def __init__(self) -> None:
        global _runs
        start = _process_start() if _runs == 0 else None
        self.marks: list[tuple[str, float]] = [("start", start if start is not None else time.perf_counter())]
        if _runs == 0:
            self.marks += _early
        _runs += 1

    def mark(self, name: str) -> None:
        """`name` ends now; a name already marked keeps its first time."""
        if all(done != name for done, _ in self.marks):
            self.marks.append((name, time.perf_counter()))

    def seconds(self) -> dict[str, float]:
        """Each part's seconds, in order."""
        return {name: round(at - self.marks[i - 1][1], 3) for i, (name, at) in enumerate(self.marks) if i > 0}

    def until(self, name: str) -> float | None:
        """Seconds from the start to the mark `name` (None when it was not reached)."""
        at = dict(self.marks).get(name)
        return None if at is None else at - self.marks[0][1]

    def startup_text(self, last: str) -> str:
        """'3.1 s to the first step: imports 1.2, dataset 0.4, ...' for the parts up to `last`."""
        parts = []
        for name, share in self.seconds().items():
            parts.append(f"{name.replace('_', ' ')} {share:.1f}")
            if name == last:
                break
        total = self.until(last)
        return f"{total:.1f} s from start to the first training step: {', '.join(parts)}" if total is not None else ""
