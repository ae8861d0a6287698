"""One writer per run directory: a second glovita_train on the same group fails at once naming the holder, and a
lock left by a killed process is taken over."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glovita.cli.train import main
from glovita.training.run_dir import lock_paths
from tests.conftest import generic_args

_HOLD = """
import sys, time
from pathlib import Path
from glovita.training.run_dir import exclusive_run_dir
with exclusive_run_dir(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


def _holder(run_dir: Path) -> subprocess.Popen:
    """A child process that holds `run_dir` until killed."""
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "holding"
    return child


def test_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(
    subdirs_dataset: Path, tmp_path: Path, capsys
) -> None:
    experiments = tmp_path / "exp"
    run_dir = experiments / "generic_image_dataset" / "shared" / "0"
    args = generic_args(subdirs_dataset, experiments, 3, "--group", "shared", "--training.epochs", "1")
    child = _holder(run_dir)
    try:
        began = time.perf_counter()
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2 and time.perf_counter() - began < 30  # refused before any training
        err = " ".join(capsys.readouterr().err.split())
        holder = json.loads(lock_paths(run_dir)[1].read_text())
        assert f"is in use by another glovita_train (PID {child.pid} on {holder['host']}" in err
        assert not (run_dir / "config.json").exists()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    main(args)  # the killed holder's lock is released by the OS and taken over
    assert json.loads((run_dir / "runtime_info.json").read_text())["status"] == "completed"
    assert not lock_paths(run_dir)[1].exists()  # the holder file goes with the lock
