"""Stopping for a cluster: SIGTERM (time limit, preemption) and SIGUSR1 (SLURM's warning, `--signal=USR1@90`) ask
the run to stop at its next safe point (after an optimizer step, or at the end of an epoch), write a checkpoint and
exit with PREEMPTED_EXIT_CODE, so the job script can requeue it and the same command continues it."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

PREEMPTED_EXIT_CODE = 75
"""Exit status of a run stopped by SIGTERM / SIGUSR1 after writing its checkpoint (EX_TEMPFAIL: "try again")."""

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


class TrainingPreempted(Exception):
    """Raised by the trainer once the checkpoint of a stop signal's safe point is on disk."""

    def __init__(self, signal_name: str, epoch: int, step: int | None) -> None:
        where = f"step {step} of epoch {epoch + 1}" if step is not None else f"the end of epoch {epoch + 1}"
        super().__init__(f"{signal_name} received; stopped at {where} after writing checkpoints/last.pt")
        self.signal_name = signal_name
        self.epoch = epoch
        self.step = step


class StopSignals:
    """The stop signals received so far; `received` names the first (None before any)."""

    def __init__(self) -> None:
        self.received: str | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator["StopSignals"]:
        """Handle the stop signals while the block runs (main thread only: elsewhere Python cannot install
        handlers, and the defaults stay); the earlier handlers come back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
