"""Semi-supervised steps: the unlabeled pool is the rest of the training split; FixMatch and mean teacher train
and log their terms; a killed FixMatch run resumes to the weights of an uninterrupted one; mistakes are refused."""

import json
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main
from glovita.training.steps.semi_supervised import SemiSupervisedStep
from tests.conftest import generic_args


def _args(dataset: Path, experiments: Path, group: str, *extra: str) -> list[str]:
    return generic_args(dataset, experiments, 3, "--group", group, "--training.epochs", "2",
                        "--data.data_fraction", "0.34", "--dataloading.batch_size", "4", "--training.ema_decay", "0.9",
                        "training.step:semi-supervised-step-config", "--training.step.unlabeled_ratio", "2",
                        "--training.step.threshold", "0.5", *extra)  # fmt: skip


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return {**checkpoint["model"], **{f"ema.{k}": v for k, v in checkpoint["ema"].items()}}


def test_the_unlabeled_pool_is_the_rest_of_the_training_split() -> None:
    from glovita.datasets.factory import _with_fraction, left_out

    targets = [i % 3 for i in range(30)]
    kept, _ = _with_fraction(list(range(30)), targets, 0.2, stratify=True)  # type: ignore[arg-type]
    pool = left_out(kept)
    assert pool is not None and len(kept) + len(pool) == 30  # type: ignore[arg-type]
    assert set(kept.indices).isdisjoint(pool.indices) and set(kept.indices) | set(pool.indices) == set(range(30))
    assert left_out(_with_fraction(list(range(30)), targets, 1.0, stratify=True)[0]) is None  # type: ignore[arg-type]


def test_a_killed_fixmatch_run_resumes_to_identical_weights(
    subdirs_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiments = tmp_path / "exp"
    main(_args(subdirs_dataset, experiments, "straight"))
    straight = experiments / "generic_image_dataset" / "straight" / "0"
    resolved = json.loads((straight / "resolved_config.json").read_text())
    unlabeled = 36 - resolved["dataset_sizes"]["train"]
    assert resolved["steps_per_epoch"] == -(-unlabeled // 8)  # an epoch is one pass over the unlabeled pool (mu x 4)
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert all({"train_unlabeled_loss", "train_mask_rate"} <= set(r) for r in records)

    original, calls = SemiSupervisedStep.train_step, {"n": 0}

    def dying_step(self, model, batch, context):
        calls["n"] += 1
        if calls["n"] == resolved["steps_per_epoch"] + 2:  # inside the second epoch
            raise KeyboardInterrupt("simulated kill")
        return original(self, model, batch, context)

    monkeypatch.setattr(SemiSupervisedStep, "train_step", dying_step)
    with pytest.raises(SystemExit):
        main(_args(subdirs_dataset, experiments, "killed"))
    monkeypatch.setattr(SemiSupervisedStep, "train_step", original)
    main(_args(subdirs_dataset, experiments, "killed", "--training.resume"))
    killed = experiments / "generic_image_dataset" / "killed" / "0"
    expected, resumed = _weights(straight), _weights(killed)
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_mean_teacher_ramps_its_consistency_weight_up(subdirs_dataset: Path, tmp_path: Path) -> None:
    main(_args(subdirs_dataset, tmp_path / "exp", "mt", "--training.step.method", "mean_teacher",
               "--training.step.rampup_epochs", "2"))  # fmt: skip
    run = tmp_path / "exp" / "generic_image_dataset" / "mt" / "0"
    weights = [
        json.loads(line)["train_consistency_weight"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert 0 < weights[0] < weights[1] <= 1.0  # exp(-5 (1 - t)^2) over 2 epochs
    assert json.loads((run / "test_metrics.json").read_text())["test_ema_accuracy"] >= 0.0


def test_semi_supervised_mistakes_are_refused(
    subdirs_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*_args(subdirs_dataset, tmp_path / "exp", "a"), "--data.data_fraction", "1.0"])
    assert "pass --data.data_fraction below 1" in " ".join(capsys.readouterr().err.split())
    args = [a for a in _args(subdirs_dataset, tmp_path / "exp", "b") if a not in ("--training.ema_decay", "0.9")]
    with pytest.raises(SystemExit):
        main([*args, "--training.step.method", "mean_teacher"])
    assert "uses the EMA weights as its teacher: pass --training.ema_decay" in " ".join(capsys.readouterr().err.split())


def test_a_folder_of_unlabeled_images(
    subdirs_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import write_images

    for label, count in enumerate((6, 5, 5)):
        write_images(tmp_path / "pool" / f"batch{label}", label, count, prefix="u")
    args = _args(subdirs_dataset, tmp_path / "exp", "folder", "--data.data_fraction", "1.0", "--training.epochs", "1",
                 "--training.step.unlabeled_dir", str(tmp_path / "pool"))  # fmt: skip
    main(args)
    resolved = json.loads((tmp_path / "exp" / "generic_image_dataset" / "folder" / "0" / "resolved_config.json")
                          .read_text())  # fmt: skip
    assert resolved["dataset_sizes"]["train"] == 36 and resolved["steps_per_epoch"] == 16 // 8
    with pytest.raises(SystemExit):
        main([*args[:-1], str(tmp_path / "nowhere"), "--group", "missing"])
    assert "training.step.unlabeled_dir: " in capsys.readouterr().err
