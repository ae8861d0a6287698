"""torchrun + DDP on CPU (gloo): two processes follow one process with the same global batch, only rank 0
writes, and a multi-process run stopped by SIGTERM inside an epoch resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main
from tests.conftest import feature_args

HEAD = ["--model.head.head_type", "classification", "--optimizer.lr", "0.05"]
BIN = Path(sys.executable).parent


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _checkpoint(tmp_path: Path, group: str) -> dict:
    path = tmp_path / "exp" / "precomputed_features" / group / "0" / "checkpoints" / "last.pt"
    return torch.load(path, weights_only=True)


def test_two_processes_match_one_process_and_resume_exactly(tmp_path: Path) -> None:
    """2 processes x batch 4 follow 1 process x batch 8; a 2-process run stopped after epoch 2 and resumed through
    the console script ends bit-identical to the straight 2-process run."""
    base = [*HEAD, "--optimizer.scheduler", "none"]  # a constant LR: the resumed run may extend its epochs
    epochs = ["--training.epochs", "3"]
    main(feature_args(tmp_path, "instances", base, group="single") + [*epochs, "--dataloading.batch_size", "8"])
    result = _torchrun(
        "-m", "glovita.train", *feature_args(tmp_path, "instances", base, group="ddp"), *epochs,
        "--dataloading.batch_size", "4",
    )  # fmt: skip
    assert result.stdout.count("GloViTa run summary") == 1  # rank 0 alone reports
    single, ddp = _checkpoint(tmp_path, "single"), _checkpoint(tmp_path, "ddp")
    for key, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-5, atol=1e-6)
    run_dir = tmp_path / "exp" / "precomputed_features" / "ddp" / "0"
    expected = json.loads(
        (tmp_path / "exp" / "precomputed_features" / "single" / "0" / "test_metrics.json").read_text()
    )
    assert json.loads((run_dir / "test_metrics.json").read_text()) == pytest.approx(expected, abs=1e-5)
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    info = json.loads((run_dir / "runtime_info.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "completed"
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["world_size"] == 2 and resolved["global_batch_size"] == 8
    assert sorted(p.name for p in (tmp_path / "exp" / "precomputed_features").iterdir()) == ["ddp", "single"]

    # SIGTERM to torchrun (it passes it on to both processes) inside epoch 2: they agree on the step, rank 0
    # checkpoints there, both exit; the same command with resume_mode auto ends bit-identical to the straight run.
    slow = tmp_path / "slow_train.py"  # 50 ms a step, so that the signal lands inside an epoch
    slow.write_text(
        "import time\nfrom glovita.training.steps.supervised import SupervisedStep\n"
        "original = SupervisedStep.train_step\n"
        "SupervisedStep.train_step = lambda self, *args: (time.sleep(0.05), original(self, *args))[1]\n"
        "from glovita.cli.train import main\nmain()\n"
    )
    resumed_args = [*feature_args(tmp_path, "instances", base, group="resumed"), "--dataloading.batch_size", "4",
                    *epochs, "--training.resume_mode", "auto", "--training.checkpoint_every_n_steps", "2"]  # fmt: skip
    resumed_dir = tmp_path / "exp" / "precomputed_features" / "resumed" / "0"
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(slow), *resumed_args]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    began = time.perf_counter()
    while child.poll() is None and time.perf_counter() - began < 120:
        metrics = resumed_dir / "metrics.jsonl"
        if metrics.is_file() and metrics.read_text().count("\n") >= 1:
            break
        time.sleep(0.01)
    time.sleep(0.12)  # about 2 of the 8 steps of epoch 2
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    info = json.loads((resumed_dir / "runtime_info.json").read_text())
    assert info["status"] == "preempted", err[-3000:]
    stopped = _checkpoint(tmp_path, "resumed")
    assert stopped["epoch"] == 1 and stopped["epoch_progress"]["step"] in (2, 4, 6)
    _torchrun(str(BIN / "glovita_train"), *resumed_args)
    resumed = _checkpoint(tmp_path, "resumed")
    assert resumed["epoch"] == 2
    for key, value in ddp["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert [json.loads(line)["val_loss"] for line in (resumed_dir / "metrics.jsonl").read_text().splitlines()] == [
        json.loads(line)["val_loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_sync_batchnorm_on_cpu_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main([*feature_args(tmp_path, "instances", HEAD), "--training.sync_batchnorm", "--training.device", "cpu"])
    assert "training.sync_batchnorm needs CUDA processes" in capsys.readouterr().err


def test_the_saliency_guided_step_trains_under_torchrun(tmp_path: Path) -> None:
    """The CAM's gradients come from torch.autograd.grad and the loss is backpropagated once, so DDP's reducer
    sees each parameter's gradient once: a 2-process run trains and tests (an error such as "marked ready twice"
    would stop it)."""
    from glovita.cli.make_digit_masks import main as make_digit_masks

    make_digit_masks(["--output_dir", str(tmp_path / "dm"), "--num_images", "40", "--image_size", "32"])
    _torchrun(
        "-m", "glovita.train", "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(tmp_path / "dm"),
        "--data.num_classes", "10", "--data.masks_dir", "masks", "--data.augmentation.image_size", "32",
        "--data.augmentation.resize_size", "32", "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained",
        "--training.step.step_type", "saliency_guided", "--training.step.target_layer", "layer2",
        "--training.epochs", "1", "--dataloading.batch_size", "4", "--dataloading.num_workers", "0",
        "--experiments_dir", str(tmp_path / "exp"), "--group", "ddp",
    )  # fmt: skip
    run_dir = tmp_path / "exp" / "generic_image_dataset" / "ddp" / "0"
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert 0 <= tested["test_saliency_iou"] <= 1 and "test_pointing_game" in tested
    assert json.loads((run_dir / "runtime_info.json").read_text())["world_size"] == 2
