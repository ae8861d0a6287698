"""Checkpoints written in the background: the written state is the epoch's (training may change its weights
meanwhile), one write at a time, errors surface, and kill -9 during a background write loses nothing."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main
from glovita.errors import DiskFullError
from glovita.training.checkpoints import CheckpointWriter, load_checkpoint
from tests.conftest import generic_args


def test_the_written_state_is_the_epochs_while_training_goes_on(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path / "checkpoints", every_n_epochs=1, max_epoch_files=None)
    weight = torch.zeros(4)
    began, ended = [], []
    original = writer._write

    def slow(state: dict, epoch: int, is_best: bool) -> None:
        began.append(time.perf_counter())
        time.sleep(0.2)
        original(state, epoch, is_best)
        ended.append(time.perf_counter())

    writer._write = slow  # type: ignore[method-assign]
    writer.save({"model": {"w": weight}}, epoch=0, is_best=True)
    weight += 1  # the next epoch trains on while epoch 0 is written
    writer.save({"model": {"w": weight}}, epoch=1, is_best=False)
    writer.join()
    assert began[1] >= ended[0]  # never two writes at once
    assert torch.equal(load_checkpoint(writer.best)["model"]["w"], torch.zeros(4))
    assert torch.equal(load_checkpoint(writer.last)["model"]["w"], torch.ones(4))
    assert writer.best_state is not None and writer.best_state["epoch"] == 0
    assert torch.equal(writer.best_state["model"]["w"], torch.zeros(4))


def test_a_failed_background_write_is_raised_by_the_next_save(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path / "checkpoints", every_n_epochs=1, max_epoch_files=None)

    def full(state: dict, epoch: int, is_best: bool) -> None:
        raise DiskFullError("No space left on the device while writing checkpoint")

    writer._write = full  # type: ignore[method-assign]
    writer.save({"model": {}}, epoch=0, is_best=False)
    with pytest.raises(DiskFullError, match="No space left"):
        writer.join()
    writer.join()  # raised once


_CHILD = """
import pathlib, sys, time
from glovita.training import checkpoints
original = checkpoints.CheckpointWriter._write
marker = pathlib.Path(sys.argv[1])
def slow(self, state, epoch, is_best):
    if epoch == 1:
        marker.write_text("writing")
        time.sleep(30)  # killed in here
    original(self, state, epoch, is_best)
checkpoints.CheckpointWriter._write = slow
from glovita.cli.train import main
main(sys.argv[2:])
"""


def test_kill_9_during_a_background_write_then_resume_equals_a_straight_run(
    subdirs_dataset: Path, tmp_path: Path
) -> None:
    experiments = tmp_path / "exp"

    def args(group: str) -> list[str]:
        return generic_args(subdirs_dataset, experiments, 3, "--group", group, "--training.epochs", "3")

    main(args("straight"))
    marker = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(marker), *args("killed")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    began = time.perf_counter()
    while not marker.is_file() and child.poll() is None and time.perf_counter() - began < 120:
        time.sleep(0.02)
    assert marker.is_file(), "the child never started writing epoch 1"
    time.sleep(0.3)  # training of epoch 2 goes on meanwhile
    child.send_signal(signal.SIGKILL)
    child.wait()
    run_dir = experiments / "generic_image_dataset" / "killed" / "0"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 0  # the previous one, intact
    main([*args("killed"), "--training.resume"])
    straight = experiments / "generic_image_dataset" / "straight" / "0" / "checkpoints" / "last.pt"
    expected = torch.load(straight, weights_only=True)["model"]
    resumed = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_ctrl_c_waits_for_the_checkpoint_write_in_flight(
    subdirs_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C right after an epoch's checkpoint was handed to the writer: the run ends only when last.pt is on disk
    (the resume command it prints needs it)."""
    from glovita.training.steps.supervised import SupervisedStep

    original_write, original_step = CheckpointWriter._write, SupervisedStep.train_step
    calls = {"n": 0}

    def slow_write(self: CheckpointWriter, state: dict, epoch: int, is_best: bool) -> None:
        time.sleep(1.0)
        original_write(self, state, epoch, is_best)

    def dying_step(self, model, batch, context):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 5 + 1:  # the first step of the second epoch (36 samples, batches of 8: 5 steps)
            raise KeyboardInterrupt("simulated Ctrl-C")
        return original_step(self, model, batch, context)

    monkeypatch.setattr(CheckpointWriter, "_write", slow_write)
    monkeypatch.setattr(SupervisedStep, "train_step", dying_step)
    args = generic_args(subdirs_dataset, tmp_path / "exp", 3, "--group", "g", "--training.epochs", "3")
    with pytest.raises(SystemExit):
        main(args)
    last = tmp_path / "exp" / "generic_image_dataset" / "g" / "0" / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["epoch"] == 0
