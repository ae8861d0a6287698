"""The run's expected end, from the epochs measured so far, and whether it fits a time limit (--training.time_limit,
or the end time SLURM gives the job)."""

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from glovita.configs.training import parse_duration


def deadline(time_limit: str | None, started: float) -> tuple[float | None, str | None]:
    """The attempt's deadline (Unix time) and where it comes from: --training.time_limit counted from `started`,
    SLURM's job end time (SLURM_JOB_END_TIME), the earlier of the two, or (None, None)."""
    found: list[tuple[float, str]] = []
    if time_limit is not None:
        found.append((started + parse_duration(time_limit), f"--training.time_limit {time_limit}"))
    slurm_end = os.environ.get("SLURM_JOB_END_TIME", "")
    if slurm_end.strip().isdigit() and int(slurm_end) > 0:
        found.append((float(slurm_end), "the SLURM job's end time"))
    if not found:
        return None, None
    return min(found)


def clock_text(seconds: float) -> str:
    """3h 05m, 12m 30s, 45s."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@dataclass
class RunEstimate:
    """Expected end of the run after each epoch: the remaining epochs at the mean epoch time (training and
    validation) of this attempt, plus the test pass (the validation time scaled by test / validation size)."""

    epochs: int
    val_size: int
    test_size: int
    deadline: float | None = None
    deadline_source: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    val_seconds: list[float] = field(default_factory=list)
    warned: bool = False

    def after_epoch(self, record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """Fold in an epoch's record (epoch, epoch_seconds, val_seconds); the estimate as runtime_info fields."""
        now = time.time() if now is None else now
        self.epoch_seconds.append(float(record["epoch_seconds"]) + float(record["val_seconds"]))
        self.val_seconds.append(float(record["val_seconds"]))
        per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds)
        remaining = self.epochs - int(record["epoch"]) - 1
        test = sum(self.val_seconds) / len(self.val_seconds) * self.test_size / max(self.val_size, 1)
        left = remaining * per_epoch + test
        estimate: dict[str, Any] = {
            "expected_end": datetime.fromtimestamp(now + left).isoformat(timespec="seconds"),
            "expected_seconds_left": round(left, 1),
            "seconds_per_epoch": round(per_epoch, 2),
        }
        if self.deadline is not None:
            estimate["time_limit_end"] = datetime.fromtimestamp(self.deadline).isoformat(timespec="seconds")
            estimate["fits_time_limit"] = now + left <= self.deadline
        return estimate

    def note(self, estimate: dict[str, Any]) -> str:
        """What the epoch line shows: the expected end."""
        end = datetime.fromisoformat(estimate["expected_end"])
        return f"ends ~{end:%H:%M} (in {clock_text(estimate['expected_seconds_left'])})"

    def warning(self, estimate: dict[str, Any], now: float | None = None) -> str | None:
        """Once, when the run is not expected to end before its deadline: by how much, how many epochs fit, and
        what to do."""
        if self.warned or estimate.get("fits_time_limit", True) or self.deadline is None:
            return None
        self.warned = True
        now = time.time() if now is None else now
        available = self.deadline - now
        fit = max(int(available // max(estimate["seconds_per_epoch"], 1e-9)), 0)
        end = datetime.fromisoformat(estimate["expected_end"])
        limit = datetime.fromtimestamp(self.deadline)
        return (
            f"warning: this run is expected to end at {end:%Y-%m-%d %H:%M} but {self.deadline_source} ends at "
            f"{limit:%Y-%m-%d %H:%M} ({clock_text(available)} from now: about {fit} more epochs fit). Give it more "
            "time, or run it with --training.resume_mode auto and requeue the job (docs/training.md, cluster runs)."
        )
