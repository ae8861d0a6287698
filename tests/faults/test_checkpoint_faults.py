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
writer = CheckpointWriter(Path(sys.argv[1]), every_n_epochs=0, max_epoch_files=None, background=False)
state = {"model": {"w": torch.full((48 * 1024 * 1024,), 7.0)}}  # 192 MB: writing takes a while
epoch = 1
while True:
    print("writing", epoch, flush=True)
    writer.save(state, epoch, is_best=False)
    epoch += 1
"""


def test_sigkill_during_checkpoint_write_keeps_the_previous_last_pt(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    first = CheckpointWriter(folder, 0, None)
    first.save({"model": {"w": torch.zeros(4)}}, 0, is_best=False)
    first.join()
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
    writer = CheckpointWriter(tmp_path, 0, None)
    writer.save({"model": {"w": torch.zeros(1000)}}, 0, is_best=False)
    writer.join()
    path.write_bytes(path.read_bytes()[:500])
    try:
        load_checkpoint(path)
    except ValueError as err:
        assert f"Checkpoint '{path}' is damaged (truncated: 500 bytes on disk" in str(err)
    else:
        raise AssertionError("a truncated checkpoint must not load")


def test_damaged_last_pt_is_detected_and_resume_uses_the_newest_intact_checkpoint(
    subdirs_dataset: Path, tmp_path: Path, capsys
) -> None:
    import json

    import pytest

    from glovita.cli.train import main
    from tests.conftest import generic_args

    args = generic_args(subdirs_dataset, tmp_path / "exp", 3, "--group", "g", "--training.epochs", "3")
    main(args)
    folder = tmp_path / "exp" / "generic_image_dataset" / "g" / "0" / "checkpoints"
    sums = json.loads((folder.parent / "checkpoint_checksums.json").read_text())
    assert set(sums) >= {"last.pt", "best.pt", "epoch_0000.pt", "epoch_0001.pt", "epoch_0002.pt"}
    with (folder / "last.pt").open("r+b") as handle:  # flip bytes in place: the hard link epoch_0002.pt too
        handle.seek(1000)
        handle.write(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"last.pt' is damaged \(its checksum differs from the one written\)"):
        load_checkpoint(folder / "last.pt")
    capsys.readouterr()
    main([*args, "--training.resume", "--training.epochs", "4"])
    out = " ".join((lambda c: c.out + c.err)(capsys.readouterr()).split())
    assert (
        "passed over damaged checkpoints (last.pt: its checksum differs" in out and "resuming from epoch_0001.pt" in out
    )
    assert load_checkpoint(folder / "last.pt")["epoch"] == 3  # epochs 3 and 4 trained again from epoch_0001.pt
    lines = (folder.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2, 3]
