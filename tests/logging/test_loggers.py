"""Tracking backends, run for real: MLflow's local store read back through its own client, W&B offline files."""

import json
import sys
from pathlib import Path

import pytest

from glovita.cli.train import main
from tests.conftest import ObservedRun, feature_args
from tests.logging.wandb_records import read_records

HEAD = ["--model.head.head_type", "classification", "--optimizer.lr", "0.05"]


def _run_dir(tmp_path: Path) -> Path:
    return tmp_path / "exp" / "precomputed_features" / "g" / "0"


def test_mlflow_local_store_holds_params_metrics_and_plots(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    args = feature_args(tmp_path, "instances", HEAD) + ["--training.epochs", "2", "--add_log.notes.phase", "warmup"]
    main([*args, "logger:mlflow-logger-config"])
    store = tmp_path / "exp" / "mlflow" / "mlflow.db"
    assert store.is_file()
    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("glovita_precomputed_features")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "g_fold0" and run.info.status == "FINISHED"
    assert run.data.params["training.epochs"] == "2"
    assert run.data.params["model.head.head_type"] == "classification"
    assert run.data.params["add_log.notes.phase"] == "warmup"
    assert run.data.tags["glovita.group"] == "g"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [0, 1]
    test_metrics = json.loads((_run_dir(tmp_path) / "test_metrics.json").read_text())
    assert run.data.metrics["test_auroc"] == pytest.approx(test_metrics["test_auroc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "reliability_diagram.png"} <= artifacts
    run_id = json.loads((_run_dir(tmp_path) / "runtime_info.json").read_text())["logger_run_id"]
    assert run_id == run.info.run_id

    # Resuming with more epochs continues the same MLflow run.
    main([*args, "--training.epochs", "3", "--training.resume", "--logger.backend", "mlflow"])
    (resumed,) = client.search_runs([experiment.experiment_id])
    assert resumed.info.run_id == run_id and resumed.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_accuracy")] == [0, 1, 2]


def test_wandb_offline_run_files(tmp_path: Path) -> None:
    args = feature_args(tmp_path, "instances", HEAD) + ["--training.epochs", "2", "--add_log.owner", "me"]
    main([*args, "--logger.backend", "wandb", "--logger.mode", "offline", "--logger.tags", "smoke"])
    (run_file,) = (tmp_path / "exp" / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(read_records(run_file))
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.project == "glovita_precomputed_features" and run.run_group == "g"
    assert run.display_name == "g_fold0" and list(run.tags) == ["smoke"]
    updates = [r.config.update for r in records if r.WhichOneof("record_type") == "config"]
    config = {item.key: item.value_json for update in [run.config.update, *updates] for item in update}
    assert json.loads(config["training"])["epochs"] == 2
    assert json.loads(config["add_log"]) == {"owner": "me"}
    rows = [
        {item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    assert [json.loads(row["epoch"]) for row in rows if "val_accuracy" in row] == [0, 1]
    assert any("test_auroc" in row for row in rows)
    images = list(run_file.parent.glob("files/media/images/*.png"))
    assert {p.name.split("_")[0] for p in images} >= {"confusion", "reliability"}


def test_missing_backend_names_the_install_command(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an install without the extra looks like
    with pytest.raises(SystemExit):
        main(feature_args(tmp_path, "instances", HEAD) + ["--logger.backend", "mlflow"])
    err = capsys.readouterr().err
    assert "logger backend 'mlflow' needs the mlflow package" in err
    assert "pip install -e '.[mlflow]'" in err


def test_logger_is_not_imported_for_help_or_none() -> None:
    import subprocess

    code = (
        "import sys; from glovita.cli.train import parse_root_config; "
        "parse_root_config(['--logger.backend', 'mlflow']); "
        "print(any(m in sys.modules for m in ('mlflow', 'wandb')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_tensorboard_events_hold_scalars_images_and_hparams(observed_run: ObservedRun) -> None:
    """Read back with TensorBoard's own reader: every epoch's scalars (the resumed attempt's appended), the plots as
    images, the hyper-parameters with the test metrics, all in the run directory (what `tensorboard --logdir
    experiments` finds)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = observed_run.run_dir
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "test_accuracy"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("val_accuracy")] == [0, 1, 2]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in events.Scalars("val_loss")] == pytest.approx([r["val_loss"] for r in records])
    assert {"confusion_matrix", "reliability_diagram"} <= set(tags["images"])
    image = events.Images("confusion_matrix")[-1]
    assert image.width > 100 and image.height > 100
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert events.Scalars("test_accuracy")[-1].value == pytest.approx(test["test_accuracy"])
    session = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(session).session_start_info
    assert info.hparams["training.epochs"].number_value == 2  # the first attempt's record stands (TensorBoard's reader)
    assert info.hparams["model.head.head_type"].string_value == "classification"
