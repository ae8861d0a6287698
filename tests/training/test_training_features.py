"""Loop features users of timm and Lightning expect: EMA, early stopping, gradient accumulation, class weights,
class-balanced sampling, encoder learning rate, torch.compile."""

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from glovita.cli.train import main, parse_root_config
from glovita.models.heads.classification import ClassificationHead
from glovita.runtime.loaders import EpochPlan, SeededSampler
from glovita.training.optim import build_optimizer
from glovita.training.resolve import balanced_sample_weights, resolve_class_weight
from tests.conftest import feature_args, labels_batch

HEAD = ["--model.head.head_type", "classification", "--optimizer.lr", "0.05"]


def _run_dir(tmp_path: Path, group: str = "g") -> Path:
    return tmp_path / "exp" / "precomputed_features" / group / "0"


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ema_is_validated_tested_and_checkpointed(tmp_path: Path) -> None:
    main(
        feature_args(tmp_path, "instances", HEAD)
        + ["--training.ema_decay", "0.9", "--training.best_checkpoint_metric", "ema_accuracy"]
    )
    run_dir = _run_dir(tmp_path)
    records = _records(run_dir)
    assert all("val_ema_accuracy" in r and "val_ema_loss" in r for r in records)
    # The average lags the raw weights: their validation losses differ.
    assert any(abs(r["val_ema_loss"] - r["val_loss"]) > 1e-6 for r in records)
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert test["test_ema_auroc"] >= 0.9 and "test_auroc" in test
    checkpoint = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["ema"].keys() == checkpoint["model"].keys()
    assert checkpoint["ema_updates"] > 0
    assert json.loads((run_dir / "resolved_config.json").read_text())["best_metric"] == "val_ema_accuracy"


def test_ema_metric_without_ema_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(feature_args(tmp_path, "instances", HEAD) + ["--training.best_checkpoint_metric", "val_ema_accuracy"])
    assert "training.best_checkpoint_metric='val_ema_accuracy' is not a validation metric" in capsys.readouterr().err


def test_early_stopping_stops_after_patience(tmp_path: Path) -> None:
    # A learning rate this small leaves the validation accuracy unchanged: epoch 1 stays the best.
    main(
        feature_args(tmp_path, "instances", HEAD)
        + ["--optimizer.lr", "1e-12", "--training.early_stopping_patience", "2"]
    )
    run_dir = _run_dir(tmp_path)
    assert [r["epoch"] for r in _records(run_dir)] == [0, 1, 2]
    info = json.loads((run_dir / "runtime_info.json").read_text())
    assert info["stopped_early"] is True and info["epochs_completed"] == 3 and info["status"] == "completed"
    assert (run_dir / "test_metrics.json").is_file()


def test_gradient_accumulation_matches_the_larger_batch(tmp_path: Path) -> None:
    common = ["--training.epochs", "2", "--optimizer.name", "sgd", "--optimizer.lr", "0.1"]
    main(feature_args(tmp_path, "instances", HEAD, group="big") + [*common, "--dataloading.batch_size", "16"])
    main(
        feature_args(tmp_path, "instances", HEAD, group="acc")
        + [*common, "--dataloading.batch_size", "8", "--training.accumulate_grad_batches", "2"]
    )
    big = torch.load(_run_dir(tmp_path, "big") / "checkpoints" / "last.pt", weights_only=True)
    acc = torch.load(_run_dir(tmp_path, "acc") / "checkpoints" / "last.pt", weights_only=True)
    for key, value in big["model"].items():
        torch.testing.assert_close(acc["model"][key], value, rtol=1e-5, atol=1e-6)
    resolved = json.loads((_run_dir(tmp_path, "acc") / "resolved_config.json").read_text())
    assert resolved["steps_per_epoch"] == 8 and resolved["optimizer_steps_per_epoch"] == 4
    assert resolved["global_batch_size"] == 16


def test_class_weights_follow_the_training_counts() -> None:
    targets = [0] * 6 + [1] * 3 + [2] * 1
    weights = resolve_class_weight(targets, 4)
    assert weights == pytest.approx([10 / (4 * 6), 10 / (4 * 3), 10 / (4 * 1), 1.0])
    head = ClassificationHead(5, 4, 0.0, None, 0.0, class_weight=torch.tensor(weights, dtype=torch.float32))
    logits, labels = torch.randn(10, 4), torch.tensor(targets)
    expected = F.cross_entropy(logits, labels, weight=torch.tensor(weights, dtype=torch.float32))
    torch.testing.assert_close(head.loss(logits, labels_batch(labels)), expected)


def test_class_weighted_run_records_its_weights(tmp_path: Path) -> None:
    main(feature_args(tmp_path, "instances", HEAD) + ["--task.class_weighted_loss", "--training.epochs", "1"])
    resolved = json.loads((_run_dir(tmp_path) / "resolved_config.json").read_text())
    assert resolved["class_weight"] == pytest.approx([1.0, 1.0])  # write_feature_file alternates the labels


def test_class_balanced_sampler_draws_classes_equally() -> None:
    targets = [0] * 90 + [1] * 10
    sampler = SeededSampler(
        EpochPlan(100, seed=3, shuffle=True, weights=balanced_sample_weights(targets, 2)), with_seeds=False
    )
    drawn = Counter(targets[i] for epoch in range(20) for i in (sampler.set_epoch(epoch), list(sampler))[1])
    assert 0.4 < drawn[1] / (drawn[0] + drawn[1]) < 0.6
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first  # a function of (seed, epoch): resume draws the same samples


def test_balanced_sampling_on_multilabel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_root_config(["--data.dataset", "chestxray14", "--task.class_balanced_sampling"])


def test_encoder_learning_rate_gets_its_own_group() -> None:
    cfg = parse_root_config(
        ["--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--optimizer.encoder_lr", "1e-5"]
    )
    from glovita.models.factory import build_model

    model = build_model(cfg.model, cfg.peft, 10, 0.0)
    optimizer = build_optimizer(cfg.optimizer, model, fused=False)
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates == {"encoder": 1e-5, "encoder_no_decay": 1e-5, "model": 1e-3, "model_no_decay": 1e-3}
    head_params = {id(p) for p in model.head.parameters()}
    for group in optimizer.param_groups:
        in_head = [id(p) in head_params for p in group["params"]]
        assert all(in_head) if group["name"].startswith("model") else not any(in_head)


def test_compiled_run_learns(tmp_path: Path) -> None:
    main(feature_args(tmp_path, "instances", HEAD) + ["--training.compile", "--training.epochs", "3"])
    assert json.loads((_run_dir(tmp_path) / "test_metrics.json").read_text())["test_auroc"] >= 0.9


def test_drop_last_never_discards_a_large_part_of_the_epoch(tmp_path: Path) -> None:
    from glovita.runtime.loaders import ResolvedDataloading
    from glovita.training.resolve import resolve_drop_last

    loading = ResolvedDataloading(512, 512, 0, False, False, None, True)
    kept, warning = resolve_drop_last(loading, 1006)  # would drop 494 of 1,006 rows every epoch
    assert not kept.drop_last and warning is not None and "discard 494 of 1006" in warning
    assert resolve_drop_last(loading, 1024 + 1)[0].drop_last  # a last batch of one sample is still dropped
    assert resolve_drop_last(replace(loading, batch_size=64), 1079) == (replace(loading, batch_size=64), None)  # 5 %
    main(feature_args(tmp_path, "instances", HEAD) + ["--dataloading.batch_size", "48", "--training.epochs", "1"])
    resolved = json.loads((_run_dir(tmp_path) / "resolved_config.json").read_text())
    assert resolved["steps_per_epoch"] == 2 and resolved["dataloading"]["drop_last"] is False  # 64 = 48 + 16
    assert resolved["warnings"] and "discard 16 of 64" in resolved["warnings"][0]
    assert "the run makes only 2 optimizer steps (1 epochs x 2); models rarely converge" in resolved["warnings"][1]


def test_learning_rate_far_from_the_usual_range_is_warned_about(tmp_path: Path) -> None:
    from glovita.configs.optimizer import AdamwOptimizerConfig, LbfgsOptimizerConfig, SgdOptimizerConfig
    from glovita.training.resolve import lr_range_warning

    assert lr_range_warning(AdamwOptimizerConfig(), 64) is None  # the defaults
    assert lr_range_warning(SgdOptimizerConfig(lr=0.1), 256) is None
    assert lr_range_warning(SgdOptimizerConfig(lr=2.0), 64) is None  # 8x the usual top (1.0 x 64/256): not far
    assert "10x above" in (lr_range_warning(SgdOptimizerConfig(lr=3.0), 64) or "")  # 12x
    assert "10x below" in (lr_range_warning(AdamwOptimizerConfig(lr=1e-7), 1024) or "")  # usual from 1e-5 x 2
    assert lr_range_warning(LbfgsOptimizerConfig(), 8) is None  # line search sets its steps
    main(feature_args(tmp_path, "instances", HEAD) + ["--optimizer.lr", "2.0", "--training.epochs", "1"])
    resolved = json.loads((_run_dir(tmp_path) / "resolved_config.json").read_text())
    assert any(
        "optimizer.lr=2 with adamw at a global batch of 8 is more than 10x above" in w for w in resolved["warnings"]
    )
