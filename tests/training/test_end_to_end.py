"""CLI -> training on CPU -> exact run-directory contents; config.json reloads; user-facing errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main, parse_root_config
from glovita.inference.restore import load_run_config
from tests.conftest import FAST, feature_args, generic_args


def _train(args: list[str]) -> None:
    main(args)


def _only_run_dir(experiments: Path, dataset: str) -> Path:
    runs = sorted((experiments / dataset).glob("*/0"))
    assert len(runs) == 1, runs
    return runs[0]


def test_run_directory_layout_and_reload(subdirs_dataset: Path, tmp_path: Path) -> None:
    experiments = tmp_path / "experiments"
    args = [
        "--data.dataset",
        "generic_image_dataset",
        "--data.data_root_dir",
        str(subdirs_dataset),
        "--data.num_classes",
        "3",
        "--data.split_source",
        "subdirs",
        "--data.label_source",
        "folder",
        "--model.encoder.encoder_type",
        "timm",
        "--model.head.head_type",
        "classification",
        "--training.epochs",
        "2",
        "--experiments_dir",
        str(experiments),
        "--add_log.comment",
        "layout test",
        *FAST,
    ]
    _train(args)
    run_dir = _only_run_dir(experiments, "generic_image_dataset")
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    errors = json.loads((run_dir / "test_worst_errors.json").read_text())["samples"]
    assert ("test_worst_errors.png" in files) == bool(errors)  # the grid is drawn when best.pt got one wrong
    assert [f for f in files if f != "test_worst_errors.png"] == [
        "augmentations.png",
        "checkpoint_checksums.json",
        "checkpoints/best.pt",
        "checkpoints/epoch_0000.pt",
        "checkpoints/epoch_0001.pt",
        "checkpoints/last.pt",
        "config.json",
        "confusion_matrix.png",
        "metrics.jsonl",
        "reliability_diagram.png",
        "report.html",
        "resolved_config.json",
        "runtime_info.json",
        "test_confusion.json",
        "test_metrics.json",
        "test_roc.json",
        "test_worst_errors.json",
        "train.log",
    ]
    assert load_run_config(run_dir) == parse_root_config(args)
    assert json.loads((run_dir / "config.json").read_text())["add_log"] == {"comment": "layout test"}

    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["class_names"] == ["a", "b", "c"]
    assert resolved["num_outputs"] == 3
    assert resolved["encoder_out_dim"] == 96
    assert resolved["augmentation"]["image_size"] == 160  # test_resnet's pretrained config
    assert resolved["dataloading"]["eval_batch_size"] == 8
    assert resolved["best_metric"] == "val_accuracy" and resolved["best_metric_mode"] == "max"
    assert resolved["dataset_sizes"] == {"train": 36, "val": 12, "test": 12}

    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]
    for key in ("train_loss", "val_loss", "val_accuracy", "val_f1_macro", "val_auroc", "lr", "epoch_seconds"):
        assert key in lines[0]
    assert 0 <= lines[0]["train_data_seconds"] <= lines[0]["epoch_seconds"]
    test_metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(test_metrics) >= {"test_loss", "test_accuracy", "test_balanced_accuracy", "test_f1_macro", "test_auroc"}
    assert all(isinstance(v, float) for v in test_metrics.values())

    info = json.loads((run_dir / "runtime_info.json").read_text())
    assert info["status"] == "completed" and info["wall_seconds"] > 0
    assert info["versions"]["torch"] == torch.__version__.split("+")[0] or info["versions"]["torch"]
    assert info["command"][0] == "glovita_train"

    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert set(checkpoint) >= {"model", "optimizer", "scheduler", "scaler", "best", "rng"}
    png = (run_dir / "confusion_matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_into_same_group_is_refused(subdirs_dataset: Path, tmp_path: Path, capsys) -> None:
    args = generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1", "--group", "g1")
    _train(args)
    with pytest.raises(SystemExit):
        _train(args)
    assert "already holds a run" in capsys.readouterr().err


def test_regression_run_reports_regression_metrics(regression_dataset: Path, tmp_path: Path) -> None:
    args = [
        "--data.dataset",
        "generic_image_dataset",
        "--data.data_root_dir",
        str(regression_dataset),
        "--data.task",
        "Regression",
        "--data.subtask",
        "regression",
        "--data.num_classes",
        "1",
        "--data.label_source",
        "csv",
        "--model.head.head_type",
        "regression",
        "--training.epochs",
        "2",
        "--experiments_dir",
        str(tmp_path / "exp"),
        "--training.best_checkpoint_metric",
        "mse",
        "--training.precision",
        "bf16-mixed",
        "--training.gradient_clip_norm",
        "1.0",
        "--training.deterministic",
        *FAST,
    ]
    _train(args)
    run_dir = _only_run_dir(tmp_path / "exp", "generic_image_dataset")
    test_metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(test_metrics) == {"test_loss", "test_mae", "test_mse", "test_r2", "test_pearson"}
    assert json.loads((run_dir / "resolved_config.json").read_text())["best_metric_mode"] == "min"
    assert not (run_dir / "confusion_matrix.png").exists()
    # glovita_infer predicts with the run's bf16 autocast, as its test pass did, and so reproduces its metrics.
    from glovita.cli.infer import main as infer

    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "pred"),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    assert predicted["precision"] == "bf16-mixed"
    for key in ("mae", "mse", "r2", "pearson"):
        assert predicted[key] == pytest.approx(test_metrics[f"test_{key}"], abs=1e-6), key


def test_deterministic_runs_repeat_exactly_and_do_not_leak(subdirs_dataset: Path, tmp_path: Path) -> None:
    for group in ("d1", "d2"):
        main(generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1", "--group", group,
                          "--training.deterministic"))  # fmt: skip
    first, second = (
        torch.load(tmp_path / "exp" / "generic_image_dataset" / g / "0" / "checkpoints" / "last.pt", weights_only=True)
        for g in ("d1", "d2")
    )
    assert all(torch.equal(first["model"][k], second["model"][k]) for k in first["model"])
    main(generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1", "--group", "d3"))
    assert not torch.are_deterministic_algorithms_enabled()


def test_unknown_best_metric_fails_before_training(subdirs_dataset: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _train(["--training.best_checkpoint_metric", "F2", "--experiments_dir", str(tmp_path / "exp"), *FAST])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "training.best_checkpoint_metric='F2'" in err
    assert "val_loss, val_accuracy, val_balanced_accuracy, val_f1_macro, val_auroc" in err
    assert not (tmp_path / "exp").exists()


def test_spec_f1_alias_selects_macro_f1(tmp_path: Path, subdirs_dataset: Path) -> None:
    args = generic_args(
        subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1", "--training.best_checkpoint_metric", "F1"
    )
    _train(args)
    resolved = json.loads(
        (_only_run_dir(tmp_path / "exp", "generic_image_dataset") / "resolved_config.json").read_text()
    )
    assert resolved["best_metric"] == "val_f1_macro"


def test_missing_dataset_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glovita.train",
            "--data.dataset",
            "generic_image_dataset",
            "--data.data_root_dir",
            str(tmp_path / "missing"),
            "--data.num_classes",
            "2",
            "--experiments_dir",
            str(tmp_path / "exp"),
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "glovita_train: error: data.data_root_dir: '" in result.stderr
    assert "missing' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "exp").exists()  # a run that never started leaves no run directory behind


def test_corrupt_image_in_a_worker_names_the_file(subdirs_dataset: Path, tmp_path: Path) -> None:
    bad = subdirs_dataset / "images" / "train" / "b" / "truncated.png"
    bad.write_bytes((subdirs_dataset / "images" / "train" / "b").glob("*.png").__next__().read_bytes()[:60])
    # --data.no_check_files: the check before training decodes every file and would name it first
    args = generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1",
                        "--dataloading.num_workers", "1", "--data.no_check_files")  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "glovita.train", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"Cannot read image file '{bad}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr  # e.g. torch's FutureWarning on timm's import (glovita/__init__.py)


def test_missing_pretrained_weights_fail_at_once(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(SystemExit):
        _train(["--model.encoder.type", "resnet18", "--experiments_dir", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert "pretrained weights for timm model 'resnet18'" in err
    assert "--model.encoder.no_pretrained" in err and "--model.encoder.pretrained_path FILE" in err


_FIRST_STEP_PROBE = """
import sys
from glovita.runtime import timeline
mark = timeline.Timeline.mark
def probe(self, name):
    if name == "first_step":
        print("loaded at the first step:", [m for m in ("matplotlib", "torchmetrics") if m in sys.modules], flush=True)
    mark(self, name)
timeline.Timeline.mark = probe
from glovita.cli.train import main
sys.argv = ["glovita_train", *sys.argv[1:]]
main()  # as the console script: the process ends in main, without the interpreter's teardown
"""


def test_log_in_a_file_has_one_plain_line_per_epoch(tmp_path: Path) -> None:
    """stdout and stderr to a file (SLURM, nohup, | tee): every epoch line whole, no terminal control characters;
    the command reports its start-up (and imports neither matplotlib nor torchmetrics before the first step) and
    its log is complete although it ends without the interpreter's teardown."""
    args = feature_args(tmp_path, "instances", ["--model.head.head_type", "classification"]) + [
        "--training.epochs", "3", "--dataloading.batch_size", "4",  # a long line: 16 steps, lr warning
    ]  # fmt: skip
    log = tmp_path / "run.log"
    with log.open("w") as handle:
        command = [sys.executable, "-c", _FIRST_STEP_PROBE, *args]
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "loaded at the first step: []" in text
    assert re.search(r"\d+\.\d s from start to the first training step: imports \d+\.\d, config", text)
    assert "Run directory:" in text.splitlines()[-1]  # flushed before the process ended
    info = json.loads((tmp_path / "exp" / "precomputed_features" / "g" / "0" / "runtime_info.json").read_text())
    parts = info["timeline_seconds"]
    assert list(parts)[:3] == ["imports", "config", "torch_imports"]
    assert {"dataset", "model", "first_step", "training", "test"} <= set(parts)
    assert sum(parts.values()) >= info["wall_seconds"]  # the parts cover the run from the process's start
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3
    assert all(re.search(r"samples/s  ends ~\d\d:\d\d \(in [^)]+\)$", line.rstrip()) for line in epochs), epochs
    assert all("train_loss" in line and "val_loss" in line for line in epochs)
    assert "\x1b" not in text and "\r" not in text
    assert any(len(line) > 80 for line in text.splitlines())  # long lines stay whole
