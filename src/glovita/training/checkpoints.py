"""Checkpoint files: full training state (model, optimizer, scheduler, scaler, epoch, best metric, RNG)."""

import errno
import json
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glovita import __version__
from glovita.errors import DiskFullError
from glovita.runtime.io import file_crc32, link_or_copy, save_json, save_torch


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states in types that torch.load(weights_only=True) accepts."""
    py_version, py_state, py_gauss = random.getstate()
    np_state: Any = np.random.get_state()  # the legacy 5-tuple (numpy's stubs also allow a dict)
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np_state
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


CHECKSUMS = "checkpoint_checksums.json"
"""In the run directory, beside checkpoints/ (which holds only checkpoints): {file name: {size, crc32}} as each
checkpoint was written."""


def damage(path: Path) -> str | None:
    """Why a checkpoint no longer matches what was written (size, then CRC32), or None when it does or when no
    checksum was recorded for it (runs of older versions)."""
    try:
        recorded = json.loads((path.parent.parent / CHECKSUMS).read_text()).get(path.name)
    except (OSError, ValueError):
        return None
    if not recorded:
        return None
    size = path.stat().st_size
    if size != recorded["size"]:
        kind = "truncated" if size < recorded["size"] else "changed"
        return f"{kind}: {size} bytes on disk, {recorded['size']} written"
    if file_crc32(path) != recorded["crc32"]:
        return "its checksum differs from the one written"
    return None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a GloViTa checkpoint with weights_only=True; name the file when it is missing, damaged (checked against
    the checksum written with it) or unreadable."""
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.")
    problem = damage(path)
    if problem is not None:
        raise ValueError(
            f"Checkpoint '{path}' is damaged ({problem}). --training.resume continues from the newest intact "
            "checkpoint of the run; for inference choose another one (checkpoints/epoch_NNNN.pt)."
        )
    return _read(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(
            f"Checkpoint '{path}' cannot be read ({err}). It may be truncated or not a GloViTa file."
        ) from err


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resume continues from, read once, and the damaged ones passed over."""

    path: Path
    checkpoint: dict[str, Any]
    passed_over: list[str]


def _state_bytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint state."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_state_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(_state_bytes(v) for v in state)
    return 0


def snapshot(state: Any) -> Any:
    """A copy of a (nested) training state whose tensors are on the CPU and share no memory with the live ones, so
    training can go on changing its weights while the copy is written."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: snapshot(value) for key, value in state.items()}
    if isinstance(state, list):
        return [snapshot(value) for value in state]
    if isinstance(state, tuple):
        return tuple(snapshot(value) for value in state)
    return state  # numbers, strings, None: immutable


class CheckpointWriter:
    """Writes last.pt every epoch, best.pt when the metric improves, epoch_NNNN.pt every N epochs.

    best.pt and epoch files are hard links to the last.pt of their epoch: no extra write, and only the newest
    `max_epoch_files` epoch files are kept so disk use stays bounded.

    With `background` (the default), `save` takes a CPU snapshot of the state and returns; one writer thread writes
    it (atomically: temp file, fsync, rename) while training goes on. At most one write is in flight: the next
    `save` first waits for the previous one, and `join` (called when training ends) waits for the last and raises
    its error, if any. A process killed at any point leaves the previous last.pt intact.
    """

    def __init__(self, folder: Path, every_n_epochs: int, max_epoch_files: int | None, background: bool = True) -> None:
        self.folder = folder
        self.every_n_epochs = every_n_epochs
        self.max_epoch_files = max_epoch_files
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.best_state: dict[str, Any] | None = None
        """The model (and EMA) weights, best metric and epoch of the newest best.pt written by this process, so
        the test pass need not read best.pt back from disk; None before the first best epoch of this process."""
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*.tmp-*"):  # half-written files of a killed earlier process
            stale.unlink(missing_ok=True)

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    def save(self, state: dict[str, Any], epoch: int, is_best: bool) -> None:
        """Write the state of `epoch` (after waiting for the previous write); in the background by default. A state
        written inside its epoch (it holds `epoch_progress`) goes to last.pt only, never best.pt or epoch_NNNN.pt."""
        self.join()
        copied = snapshot(state) if self.background else state
        if is_best:
            kept = {key: copied[key] for key in ("model", "ema", "ema_updates", "best") if key in copied}
            self.best_state = {**kept, "epoch": epoch}
        if not self.background:
            self._write(copied, epoch, is_best)
            return
        self._thread = threading.Thread(
            target=self._write_caught, args=(copied, epoch, is_best), name="glovita-checkpoint-writer"
        )
        self._thread.start()

    def join(self) -> None:
        """Wait for the write in flight (if any); raise the error it ended with."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write_caught(self, state: dict[str, Any], epoch: int, is_best: bool) -> None:
        try:
            self._write(state, epoch, is_best)
        except BaseException as err:  # noqa: BLE001  # handed to the training thread by join()
            self._error = err

    def _write(self, state: dict[str, Any], epoch: int, is_best: bool) -> None:
        within_epoch = "epoch_progress" in state
        is_best = is_best and not within_epoch
        earlier = self.last.is_file()  # written whole or not at all (temp file + rename)
        try:
            size, crc32 = save_torch({**state, "epoch": epoch, "glovita_version": __version__}, self.last)
        except (OSError, RuntimeError) as err:  # torch's zip writer reports a full disk as a RuntimeError
            needed, free = _state_bytes(state), shutil.disk_usage(self.folder).free
            full = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or free < needed
            if not full:
                raise
            raise DiskFullError(
                f"No space left on the device while writing checkpoint '{self.last}': it needs about "
                f"{needed / 1e6:.0f} MB and {free / 1e6:.0f} MB are free in '{self.folder}'. Free some space, then "
                + (
                    "continue with --training.resume (the previous last.pt is intact)."
                    if earlier
                    else "run the same command again (no checkpoint was written yet: there is nothing to resume)."
                )
            ) from err
        written = {"size": size, "crc32": crc32}
        sums = self._checksums()
        sums[self.last.name] = written
        if is_best:
            link_or_copy(self.last, self.best)
            sums[self.best.name] = written
        if not within_epoch and self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            epoch_file = self.folder / f"epoch_{epoch:04d}.pt"
            link_or_copy(self.last, epoch_file)
            sums[epoch_file.name] = written
            if self.max_epoch_files is not None:
                for old in sorted(self.folder.glob("epoch_*.pt"))[: -self.max_epoch_files]:
                    old.unlink()
                    sums.pop(old.name, None)
        save_json(sums, self.folder.parent / CHECKSUMS)

    def _checksums(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.folder.parent / CHECKSUMS).read_text()))
        except (OSError, ValueError):
            return {}


def newest_intact_checkpoint(folder: Path) -> ResumePoint:
    """The checkpoint a resume continues from (last.pt, else the newest intact epoch_NNNN.pt), checked and read
    once; raises naming every damaged file when none is intact."""
    candidates = [folder / "last.pt", *sorted(folder.glob("epoch_*.pt"), reverse=True)]
    passed: list[str] = []
    for path in candidates:
        if not path.is_file():
            continue
        problem = damage(path)
        if problem is None:
            try:
                return ResumePoint(path, _read(path), passed)
            except ValueError:
                problem = "unreadable"
        passed.append(f"{path.name}: {problem}")
    raise ValueError(
        f"training.resume: no intact checkpoint in '{folder}' ({'; '.join(passed) or 'none written'}). "
        "Start the run again under another --group."
    )
