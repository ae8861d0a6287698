"""kill -9 at a random point of a run (inside an epoch, or inside a checkpoint write) loses nothing: resuming
gives the weights of an uninterrupted run, bit for bit."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from glovita.cli.train import main
from tests.conftest import generic_args


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_kill_9_at_random_points_then_resume_equals_a_straight_run(subdirs_dataset: Path, tmp_path: Path) -> None:
    experiments = tmp_path / "exp"

    def args(group: str) -> list[str]:
        return generic_args(subdirs_dataset, experiments, 3, "--group", group, "--training.epochs", "4",
                            "--data.augmentation.train_policy", "randaugment")  # fmt: skip

    main(args("straight"))
    rng = random.Random(20261201)
    run_dir = experiments / "generic_image_dataset" / "killed" / "0"
    kills = 0
    for _attempt in range(3):
        resume = ["--training.resume"] if (run_dir / "checkpoints" / "last.pt").is_file() else []
        child = subprocess.Popen([sys.executable, "-m", "glovita.train", *args("killed"), *resume],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        began = time.perf_counter()
        while not (run_dir / "metrics.jsonl").is_file() and child.poll() is None and time.perf_counter() - began < 60:
            time.sleep(0.02)  # training has started (the first epoch has ended)
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere in a later epoch or its checkpoint write
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
    main([*args("killed"), "--training.resume"])
    expected, resumed = _weights(experiments / "generic_image_dataset" / "straight" / "0"), _weights(run_dir)
    assert kills >= 1 and expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
