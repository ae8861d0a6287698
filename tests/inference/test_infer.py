"""glovita_infer: the run's own split, a folder of images, a CSV, TTA, EMA weights, and bad input."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from glovita.cli.infer import main as infer
from glovita.cli.train import main as train
from tests.conftest import FAST, feature_args, write_images


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-class run on band images (test split: 4 per class); returns its run directory."""
    root = tmp_path_factory.mktemp("infer")
    data = root / "ds"
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        for label, name in enumerate("abc"):
            write_images(data / "images" / split / name, label, count, prefix=split)
    train(
        [
            "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "3",
            "--data.split_source", "subdirs", "--data.label_source", "folder", "--experiments_dir",
            str(root / "exp"), "--group", "g", "--training.epochs", "3", "--training.ema_decay", "0.5", *FAST,
        ]
    )  # fmt: skip
    return root / "exp" / "generic_image_dataset" / "g" / "0"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _infer(run_dir: Path, out: Path, *extra: str) -> dict:
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(out), *extra])
    metrics = out / "metrics.json"
    return json.loads(metrics.read_text()) if metrics.is_file() else {}


def test_default_split_matches_the_runs_test_metrics(trained: Path, tmp_path: Path) -> None:
    metrics = _infer(trained, tmp_path / "out", "--dataloading.num_workers", "0")
    expected = json.loads((trained / "test_metrics.json").read_text())
    assert metrics["num_samples"] == 12 and metrics["source"] == "generic_image_dataset test split"
    assert metrics["accuracy"] == pytest.approx(expected["test_accuracy"])
    assert metrics["auroc"] == pytest.approx(expected["test_auroc"], abs=1e-6)
    rows = _rows(tmp_path / "out" / "predictions.csv")
    assert list(rows[0]) == ["id", "target", "prediction_label", "prob_a", "prob_b", "prob_c"]
    assert rows[0]["id"].endswith(".png") and Path(rows[0]["id"]).is_file()
    correct = sum(r["target"] == r["prediction_label"] for r in rows)
    assert correct / len(rows) == pytest.approx(metrics["accuracy"])
    assert all(abs(sum(float(r[f"prob_{c}"]) for c in "abc") - 1) < 1e-4 for r in rows)


def test_image_folder_with_class_subfolders_is_scored(trained: Path, tmp_path: Path) -> None:
    images = trained.parents[3] / "ds" / "images" / "test"
    metrics = _infer(trained, tmp_path / "out", "--image_dir", str(images), "--dataloading.num_workers", "0")
    expected = json.loads((trained / "test_metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(expected["test_accuracy"])

    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(images.rglob("*.png"))[:5]:
        shutil.copy(path, flat / path.name)
    assert _infer(trained, tmp_path / "flat_out", "--image_dir", str(flat)) == {}  # no labels, no metrics
    rows = _rows(tmp_path / "flat_out" / "predictions.csv")
    assert len(rows) == 5 and "target" not in rows[0] and rows[0]["prediction_label"] in "abc"


def test_image_csv_with_labels_and_hflip_tta(trained: Path, tmp_path: Path) -> None:
    images = sorted((trained.parents[3] / "ds" / "images" / "test").rglob("*.png"))
    table = tmp_path / "list.csv"
    for path in images:
        shutil.copy(path, tmp_path / path.name)  # paths in the CSV are relative to its folder
    lines = [f"{p.name},{p.parent.name}" for p in images]
    table.write_text("path,label\n" + "\n".join(lines) + "\n")
    plain = _infer(trained, tmp_path / "plain", "--image_csv", str(table))
    flipped = _infer(trained, tmp_path / "tta", "--image_csv", str(table), "--tta", "hflip")
    assert plain["num_samples"] == flipped["num_samples"] == 12 and flipped["tta"] == "hflip"
    p_plain = [r["prob_a"] for r in _rows(tmp_path / "plain" / "predictions.csv")]
    p_tta = [r["prob_a"] for r in _rows(tmp_path / "tta" / "predictions.csv")]
    assert p_plain != p_tta  # the mirror images' predictions were averaged in


def test_arguments_are_checked_before_predicting(trained: Path, tmp_path: Path, capsys) -> None:
    taken = tmp_path / "a_file"
    taken.write_text("not a folder")
    with pytest.raises(SystemExit):
        _infer(trained, taken)
    assert "output_dir '" in capsys.readouterr().err and taken.read_text() == "not a folder"
    with pytest.raises(SystemExit):  # this machine has no CUDA in the tests; a CPU float16 forward is refused
        _infer(trained, tmp_path / "fp16", "--precision", "16-mixed", "--device", "cpu")
    err = " ".join(capsys.readouterr().err.split())
    assert "precision='16-mixed' needs CUDA. Use --precision 32 or bf16-mixed on CPU." in err
    assert not (tmp_path / "fp16").exists()
    images = sorted((trained.parents[3] / "ds" / "images" / "test").rglob("*.png"))[:2]
    for path in images:
        shutil.copy(path, tmp_path / path.name)
    table = tmp_path / "list.csv"
    table.write_text("path,truth\n" + "\n".join(f"{p.name},{p.parent.name}" for p in images) + "\n")
    with pytest.raises(SystemExit):
        _infer(trained, tmp_path / "out", "--image_csv", str(table), "--csv_label_column", "label")
    err = " ".join(capsys.readouterr().err.split())
    assert "has no column 'label' (columns: path, truth)" in err and not (tmp_path / "out").exists()
    unlabelled = _infer(trained, tmp_path / "out", "--image_csv", str(table))  # unset: no 'label' column, no metrics
    assert unlabelled == {} and len(_rows(tmp_path / "out" / "predictions.csv")) == 2


def test_ema_weights_predict_differently(trained: Path, tmp_path: Path) -> None:
    raw = _infer(trained, tmp_path / "raw")
    ema = _infer(trained, tmp_path / "ema", "--use_ema")
    assert ema["weights"] == "ema" and raw["weights"] == "model"
    assert _rows(tmp_path / "raw" / "predictions.csv") != _rows(tmp_path / "ema" / "predictions.csv")


def test_csv_with_missing_files_names_them(trained: Path, tmp_path: Path, capsys) -> None:
    table = tmp_path / "list.csv"
    table.write_text("path,label\nnowhere.png,a\n")
    with pytest.raises(SystemExit):
        _infer(trained, tmp_path / "out", "--image_csv", str(table))
    err = capsys.readouterr().err
    assert f"image_csv '{table}': 1 image file(s) do not exist (line 2: {tmp_path / 'nowhere.png'})" in err


def test_unreadable_image_fails_by_default_and_can_be_skipped(trained: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for path in sorted((trained.parents[3] / "ds" / "images" / "test" / "a").glob("*.png")):
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit):
        _infer(trained, tmp_path / "out", "--image_dir", str(folder), "--dataloading.num_workers", "0")
    assert "broken.png" in capsys.readouterr().err
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image file\(s\): .*broken.png"):
        _infer(trained, tmp_path / "out", "--image_dir", str(folder), "--on_unreadable", "skip")
    assert len(_rows(tmp_path / "out" / "predictions.csv")) == 4


def test_checkpoint_outside_a_run_directory(trained: Path, tmp_path: Path, capsys) -> None:
    stray = tmp_path / "somewhere" / "checkpoints"
    stray.mkdir(parents=True)
    shutil.copy(trained / "checkpoints" / "best.pt", stray / "best.pt")
    with pytest.raises(SystemExit):
        infer(["--checkpoint_path", str(stray / "best.pt")])
    assert f"'{tmp_path / 'somewhere' / 'config.json'}' does not exist" in capsys.readouterr().err


def test_checkpoint_of_another_architecture(trained: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    config = json.loads((other / "config.json").read_text())
    config["model"]["head"]["hidden_dim"] = 32
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        infer(["--checkpoint_path", str(other / "checkpoints" / "best.pt")])
    err = capsys.readouterr().err
    assert "does not fit the model its run's config.json describes" in err and "best.pt" in err


def test_feature_run_predicts_its_split(tmp_path: Path) -> None:
    train(feature_args(tmp_path, "ptr", ["--model.head.head_type", "abmil"]) + ["--training.epochs", "3"])
    run_dir = tmp_path / "exp" / "precomputed_features" / "g" / "0"
    metrics = _infer(run_dir, tmp_path / "out", "--split", "val")
    expected = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(expected, key=lambda r: r["val_accuracy"])  # best.pt is the first epoch with the top accuracy
    assert metrics["accuracy"] == pytest.approx(best["val_accuracy"])
    assert len(_rows(tmp_path / "out" / "predictions.csv")) == 20
