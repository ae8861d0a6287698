"""Resume: a run killed mid-epoch continues from its last completed epoch and ends with the same weights
(raw and EMA, with gradient accumulation on)."""

import json
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main
from glovita.training.steps.supervised import SupervisedStep
from tests.conftest import FAST, generic_args


def _args(dataset: Path, experiments: Path, group: str, *extra: str) -> list[str]:
    return generic_args(
        dataset, experiments, 3, "--data.augmentation.train_policy", "randaugment", "--group", group,
        "--training.epochs", "3", "--model.head.dropout", "0.2", "--task.mixup_alpha", "0.4",
        "--training.ema_decay", "0.9", "--training.accumulate_grad_batches", "2", *extra,
    )  # fmt: skip


def _weights(run_dir: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
    return {**checkpoint["model"], **{f"ema.{k}": v for k, v in checkpoint["ema"].items()}}


def test_killed_run_resumes_to_identical_weights(
    subdirs_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    experiments = tmp_path / "exp"
    main(_args(subdirs_dataset, experiments, "straight"))
    capsys.readouterr()

    steps_per_epoch = 36 // 8
    original_step = SupervisedStep.train_step
    calls = {"n": 0}

    def dying_step(self, model, batch, context):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:  # in the middle of the second epoch
            raise KeyboardInterrupt("simulated kill")
        return original_step(self, model, batch, context)

    monkeypatch.setattr(SupervisedStep, "train_step", dying_step)
    with pytest.raises(SystemExit) as stopped:
        main(_args(subdirs_dataset, experiments, "killed"))
    monkeypatch.setattr(SupervisedStep, "train_step", original_step)
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("glovita_train:")]
    assert len(said) == 1 and "Traceback" not in err  # Ctrl-C: one line, not a traceback
    assert said[0].startswith("glovita_train: interrupted in epoch 2/3; runtime_info.json in")
    assert "--group killed" in said[0] and said[0].endswith(" --training.resume")

    killed = experiments / "generic_image_dataset" / "killed" / "0"
    assert torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 0
    assert json.loads((killed / "runtime_info.json").read_text())["status"] == "interrupted"

    main(_args(subdirs_dataset, experiments, "killed", "--training.resume"))
    attempts = json.loads((killed / "runtime_info.json").read_text())["attempts"]
    assert [a["status"] for a in attempts] == ["interrupted", "completed"]  # each attempt kept
    straight = experiments / "generic_image_dataset" / "straight" / "0"
    expected, resumed = _weights(straight), _weights(killed)
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    lines = [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert lines == [0, 1, 2]
    straight_metrics = json.loads((straight / "test_metrics.json").read_text())
    assert json.loads((killed / "test_metrics.json").read_text()) == straight_metrics


def test_resume_extends_epochs_but_refuses_other_changes(subdirs_dataset: Path, tmp_path: Path, capsys) -> None:
    experiments = tmp_path / "exp"
    base = _args(subdirs_dataset, experiments, "g")
    main([*base, "--training.epochs", "1"])
    with pytest.raises(SystemExit):
        main([*base, "--training.resume", "--optimizer.lr", "0.5"])
    assert "optimizer.lr: 0.001 -> 0.5" in capsys.readouterr().err
    main([*base, "--training.resume", "--training.epochs", "2"])
    run_dir = experiments / "generic_image_dataset" / "g" / "0"
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    config_before = (run_dir / "config.json").read_text()
    with pytest.raises(SystemExit):
        main([*base, "--training.resume", "--training.epochs", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert "has already trained 2 epochs, more than training.epochs=1. Pass --training.epochs 2 or more" in err
    assert (run_dir / "config.json").read_text() == config_before


def test_resume_without_a_run_says_where_it_looked(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--group", "nothing", "--training.resume", "--experiments_dir", str(tmp_path), *FAST])
    assert "no run to continue at" in capsys.readouterr().err
