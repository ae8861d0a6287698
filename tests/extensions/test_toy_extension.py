"""An installed extension package (glovita_toy, beside this file) adds a modality with its own dataset and
transforms, an encoder and a step that owns a critic, alternates updates and draws from an extra loader: trained
under both CLI styles, then used by glovita_infer, glovita_extract_features and glovita_export. Broken and
colliding extensions are named and skipped; a saved config whose tag no package provides names the tag."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def _install(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """A distribution's metadata on `site` (what pip writes): importlib.metadata finds its entry points there."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[glovita.components]\n{lines}\n")


TOY = {
    "toy_signals": "glovita_toy.config:ToySignalsConfig",
    "toy_mlp": "glovita_toy.config:ToyMlpEncoderConfig",
    "toy_alternating": "glovita_toy.config:ToyAlternatingStepConfig",
    "toy_l1": "glovita_toy.config:ToyL1HeadConfig",
}


def _run(command: str, args: list[str], site: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    paths = [str(site), str(HERE)] if site is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


COMMON = [
    "--training.epochs", "3", "--dataloading.batch_size", "8", "--dataloading.num_workers", "0",
    "--optimizer.lr", "0.01", "--training.best_checkpoint_metric", "critic_score",
]  # fmt: skip
STYLES = {
    "fields": [
        "--data.dataset", "toy_signals", "--data.num_classes", "2", "--model.encoder.encoder_type", "toy_mlp",
        "--training.step.step_type", "toy_alternating", "--training.step.n_critic", "2",
    ],
    "subcommands": [
        "data:toy-signals-config", "model.encoder:toy-mlp-encoder-config",
        "training.step:toy-alternating-step-config", "--training.step.n_critic", "2",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The toy extension installed and trained in the explicit-field style; the subcommand style's effective config
    (site folder, run, that config)."""
    root = tmp_path_factory.mktemp("toy")
    site = root / "site"
    _install(site, "glovita_toy", TOY)
    result = _run("glovita_train", [*STYLES["fields"], *COMMON, "--experiments_dir", "exp", "--group", "fields"], site,
                  root)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    printed = _run("glovita_train", [*STYLES["subcommands"], *COMMON, "--experiments_dir", "exp", "--group", "fields",
                                     "--print_config"], site, root)  # fmt: skip
    assert printed.returncode == 0, printed.stderr[-3000:]
    return site, root / "exp" / "toy_signals" / "fields" / "0", json.loads(printed.stdout)


def test_the_extension_trains_under_both_cli_styles(toy_runs: tuple[Path, Path, dict]) -> None:
    """The explicit-field style trains (and the step's state is checkpointed); the subcommand style gives the same
    config."""
    _, fields_run, subcommand_config = toy_runs
    for run in (fields_run,):
        config = json.loads((run / "config.json").read_text())
        assert (
            config["data"]["dataset"] == "toy_signals" and config["training"]["step"]["step_type"] == "toy_alternating"
        )
        assert json.loads((run / "resolved_config.json").read_text())["best_metric"] == "val_critic_score"
        test = json.loads((run / "test_metrics.json").read_text())
        assert test["test_accuracy"] >= 0.9  # raised against plain sine waves, 3 epochs
        assert "test_critic_score" in test  # the step's evaluation log, as test_<key>
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(epochs) == 3 and all("val_critic_score" in e and "train_critic_loss" in e for e in epochs)
        checkpoint = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        assert set(checkpoint["step_modules"]) == {"critic"}  # the step's module, checkpointed by the Trainer
        assert checkpoint["step"]["critic_updates"] == 2 * 3 * 12  # n_critic x epochs x steps per epoch
        assert "critic" in checkpoint["extra_optimizers"]
    assert json.loads((fields_run / "config.json").read_text()) == subcommand_config


def test_infer_extract_and_export_work_on_an_extension_run(toy_runs: tuple[Path, Path, dict], tmp_path: Path) -> None:
    site, run, _ = toy_runs
    best = str(run / "checkpoints" / "best.pt")
    result = _run("glovita_infer", ["--checkpoint_path", best, "--output_dir", str(tmp_path / "pred")], site, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    test = json.loads((run / "test_metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(test["test_accuracy"], abs=1e-6)
    assert metrics["num_samples"] == 48
    assert (tmp_path / "pred" / "predictions.csv").read_text().splitlines()[
        0
    ] == "id,target,prediction_label,prob_sine,prob_raised"
    out = tmp_path / "features"
    result = _run("glovita_extract_features", ["--checkpoint_path", best, "--output_dir", str(out), "--split", "test"],
                  site, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (written,) = out.glob("*.h5")
    with h5py.File(written) as handle:
        assert handle["features"].shape == (48, 16)
    result = _run("glovita_export", ["--checkpoint_path", best, "--output_dir", str(tmp_path / "export"),
                                     "--format", "torchscript"], site, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "export" / "preprocessing.json").read_text())["probabilities"] == "softmax"


def test_a_run_whose_extension_is_gone_names_the_tag_and_the_group(
    toy_runs: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    _, run, _ = toy_runs
    result = _run("glovita_infer", ["--checkpoint_path", str(run / "checkpoints" / "best.pt")], None, tmp_path)
    assert result.returncode == 2
    assert "'toy_signals' is not a GloViTa component" in result.stderr and "glovita.components" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_and_colliding_extensions_are_named_and_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site, "glovita_broken", {"missing": "glovita_missing.config:Nothing"})
    _install(site, "glovita_clash", {"digits_again": "glovita_clash_config:DigitsAgain"})
    (site / "glovita_clash_config.py").write_text(
        "from typing import ClassVar, Literal\nfrom glovita.configs.fields import DatasetFields\n\n"
        "class DigitsAgain(DatasetFields):\n    builder: ClassVar[str] = 'x:y'\n"
        "    dataset: Literal['digits'] = 'digits'\n"
    )
    result = _run("glovita_train", ["--help"], site, tmp_path)
    assert result.returncode == 0 and "--training.epochs" in result.stdout
    assert "extension 'missing' of glovita_broken (ModuleNotFoundError" in result.stderr
    assert "DigitsAgain of glovita_clash (its data tag 'digits' is a built-in one) was skipped" in result.stderr


HEADS_YAML = """model:
  heads:
    freq:
      target_field: frequency
      num_outputs: 1
      task: Regression
      subtask: regression
      head: {head_type: toy_l1}
      loss_weight: 0.5
"""


def test_a_named_head_reads_its_own_target_field(toy_runs: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """The extension's head, named 'freq', reads the signals' frequency beside the class head: its loss is logged
    and weighted, its metrics are prefixed (val_freq_mae can select best.pt), samples without a frequency are left
    out, and glovita_infer reproduces every test metric and writes the head's column."""
    site, _, _ = toy_runs
    (tmp_path / "heads.yaml").write_text(HEADS_YAML)
    args = ["--config", "heads.yaml", "--data.dataset", "toy_signals", "--data.num_classes", "2",
            "--model.encoder.encoder_type", "toy_mlp", "--training.epochs", "6", "--dataloading.batch_size", "8",
            "--dataloading.num_workers", "0", "--optimizer.lr", "0.01", "--training.best_checkpoint_metric",
            "freq_mae", "--experiments_dir", "exp", "--group", "heads"]  # fmt: skip
    result = _run("glovita_train", args, site, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "exp" / "toy_signals" / "heads" / "0"
    resolved = json.loads((run / "resolved_config.json").read_text())
    assert (resolved["best_metric"], resolved["best_metric_mode"]) == ("val_freq_mae", "min")
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_freq_mae", "val_freq_loss", "train_freq_loss", "val_accuracy"} <= set(e) for e in epochs)
    assert epochs[-1]["val_freq_mae"] < epochs[0]["val_freq_mae"]  # the head learns the frequency
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["test_accuracy"] >= 0.9 and math.isfinite(test["test_freq_r2"])
    result = _run("glovita_infer", ["--checkpoint_path", str(run / "checkpoints" / "best.pt"), "--output_dir", "pred"],
                  site, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    for key, value in test.items():
        if key.endswith("_loss"):
            continue  # glovita_infer scores predictions; losses are the trainer's
        assert metrics[key.removeprefix("test_")] == pytest.approx(value, abs=1e-5, nan_ok=True), key
    header = (tmp_path / "pred" / "predictions.csv").read_text().splitlines()[0]
    assert header == "id,target,prediction_label,prob_sine,prob_raised,freq_prediction"
    result = _run("glovita_export", ["--checkpoint_path", str(run / "checkpoints" / "best.pt"), "--output_dir", "x",
                                     "--format", "torchscript"], site, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]  # one output per head
    outputs = json.loads((tmp_path / "x" / "preprocessing.json").read_text())["outputs"]
    assert list(outputs) == ["logits", "freq_logits"] and outputs["freq_logits"]["task"] == "regression"
