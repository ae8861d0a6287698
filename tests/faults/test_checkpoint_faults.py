"""Faults: a process killed with SIGKILL while writing a checkpoint never leaves a truncated last.pt."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from glovita.training.checkpoints import CheckpointWriter, load_checkpoint

_WRITER = """
import sys, torch
from pathlib import Path
from glovita.training.checkpoints import CheckpointWriter
writer = CheckpointWriter(Path(sys.argv[1]), every_n_epochs=0, max_epoch_files=None)
state = {"model": {"w": torch.full((48 * 1024 * 1024,), 7.0)}}  # 192 MB: writing takes a while
epoch = 1
while True:
    print("writing", epoch, flush=True)
    writer.save(state, epoch, is_best=False)
    epoch += 1
"""


def test_sigkill_during_checkpoint_write_keeps_the_previous_last_pt(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    CheckpointWriter(folder, 0, None).save({"model": {"w": torch.zeros(4)}}, 0, is_best=False)
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().startswith("writing 1")
    time.sleep(0.05)  # inside torch.save / fsync of epoch 1
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    leftovers = list(folder.glob(".last.pt.tmp-*"))
    assert leftovers, "the kill should have landed during the write"
    checkpoint = load_checkpoint(folder / "last.pt")
    assert checkpoint["epoch"] == 0 and torch.equal(checkpoint["model"]["w"], torch.zeros(4))
    CheckpointWriter(folder, 0, None)  # the next run's writer clears the half-written file
    assert not list(folder.glob(".last.pt.tmp-*"))


def test_truncated_checkpoint_is_reported_by_name(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    CheckpointWriter(tmp_path, 0, None).save({"model": {"w": torch.zeros(1000)}}, 0, is_best=False)
    path.write_bytes(path.read_bytes()[:500])
    try:
        load_checkpoint(path)
    except ValueError as err:
        assert f"Checkpoint '{path}' cannot be read" in str(err) and "truncated" in str(err)
    else:
        raise AssertionError("a truncated checkpoint must not load")
