"""glovita_extract_features (explicit and checkpoint mode) and glovita_plot_umap, on the real digits."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from glovita.cli.extract_features import main as extract_main
from glovita.cli.train import main as train_main

TINY = ["--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--dataloading.num_workers", "0"]


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("digits") / "digits"


@pytest.fixture(scope="module")
def trained_checkpoint(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of a short digits run (test_resnet, 4 epochs)."""
    experiments = tmp_path_factory.mktemp("exp")
    train_main(["--data.data_root_dir", str(digits_root), *TINY, "--training.epochs", "4", "--group", "src",
                "--experiments_dir", str(experiments), "--optimizer.lr", "3e-3"])  # fmt: skip
    return experiments / "digits" / "src" / "0" / "checkpoints" / "best.pt"


def test_explicit_mode_writes_the_spec_layout(digits_root: Path, tmp_path: Path) -> None:
    extract_main(["--data.dataset", "digits", "--data.data_root_dir", str(digits_root), *TINY, "--method", "avg",
                  "--split", "test", "--output_dir", str(tmp_path), "--precision", "16",
                  "--compression", "gzip"])  # fmt: skip
    path = tmp_path / "agg_avg_test_resnet_digits_test_size32_float16.h5"
    with h5py.File(path) as handle:
        assert handle["features"].shape == (359, 96) and handle["features"].dtype == np.float16
        assert handle["features"].compression == "gzip"
        labels, ids = handle["labels"][:], [i.decode() for i in handle["ids"][:]]
        assert dict(handle.attrs)["method"] == "avg" and dict(handle.attrs)["checkpoint"] == "none"
    splits = json.loads((digits_root / "splits.json").read_text())
    assert [Path(i).relative_to(digits_root / "images").as_posix() for i in ids] == splits["test"]
    assert labels.tolist() == [int(i.split("/")[0]) for i in splits["test"]]
    assert list(tmp_path.glob(".*tmp*")) == []


def test_checkpoint_mode_uses_the_trained_weights(trained_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = trained_checkpoint
    extract_main(["--checkpoint_path", str(checkpoint), "--output_dir", str(tmp_path / "f"), "--split", "val",
                  "--method", "sum", "--output_filename", "{checkpoint}_{dataset}_{split}_{method}.h5"])  # fmt: skip
    path = tmp_path / "f" / "src_best_digits_val_sum.h5"
    with h5py.File(path) as handle:
        stored = torch.from_numpy(handle["features"][:2])
        first_ids = [i.decode() for i in handle["ids"][:2]]
    # Recompute the first two samples by hand with the checkpoint's encoder weights.
    from PIL import Image

    from glovita.augmentation.policies.shared_2d import default
    from glovita.augmentation.preprocessing import Preprocessing
    from glovita.configs.model import ModelConfig, TimmEncoderConfig
    from glovita.models.factory import build_encoder

    encoder = build_encoder(ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained=False),
                                        feature_aggregation_method="sum"))  # fmt: skip
    weights = torch.load(checkpoint, weights_only=True)["model"]
    encoder.load_state_dict({k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")})
    resolved = json.loads((checkpoint.parent.parent / "resolved_config.json").read_text())["augmentation"]
    transform = default(
        Preprocessing(32, 32, tuple(resolved["mean"]), tuple(resolved["std"]), resolved["interpolation"])
    )
    images = torch.stack([transform(Image.open(i).convert("RGB")) for i in first_ids])
    with torch.no_grad():
        expected = encoder.eval()(images)
    assert torch.allclose(stored, expected, atol=1e-4)


def test_extracted_features_train_a_head(trained_checkpoint: Path, tmp_path: Path) -> None:
    extract_main(["--checkpoint_path", str(trained_checkpoint), "--output_dir", str(tmp_path),
                  "--dataloading.num_workers", "0"])  # fmt: skip
    files = {s: tmp_path / f"agg_avg_test_resnet_digits_{s}_size32_float32.h5" for s in ("train", "val", "test")}
    train_main(["--data.dataset", "precomputed_features", "--data.num_classes", "10",
                "--data.train_features_file", str(files["train"]), "--data.val_features_file", str(files["val"]),
                "--data.test_features_file", str(files["test"]), "--model.encoder.encoder_type", "precomputed",
                "--model.encoder.feature_dim", "96", "--model.head.head_type", "classification",
                "--training.epochs", "10", "--dataloading.num_workers", "0",
                "--experiments_dir", str(tmp_path / "exp"), "--group", "probe"])  # fmt: skip
    metrics = json.loads((tmp_path / "exp" / "precomputed_features" / "probe" / "0" / "test_metrics.json").read_text())
    source = json.loads((trained_checkpoint.parent.parent / "test_metrics.json").read_text())
    # A linear probe on the trained encoder's features recovers most of what the encoder's own head reached,
    # and the default probe (full-batch L-BFGS) is as good as scikit-learn's logistic regression on the same files.
    assert metrics["test_accuracy"] > min(0.6, source["test_accuracy"] - 0.15), (metrics, source)
    from sklearn.linear_model import LogisticRegression

    with h5py.File(files["train"]) as train, h5py.File(files["test"]) as test:
        baseline = LogisticRegression(max_iter=2000).fit(train["features"][:], train["labels"][:])
        expected = baseline.score(test["features"][:], test["labels"][:])
    assert metrics["test_accuracy"] >= expected - 0.005, (metrics["test_accuracy"], expected)


@pytest.mark.parametrize(
    ("template", "message"),
    [("../escape_{split}.h5", "escapes output_dir"), ("{model}_{fold}.h5", r"unknown placeholders \['fold'\]")],
)
def test_bad_templates_are_refused(digits_root: Path, tmp_path: Path, template: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        extract_main(["--data.data_root_dir", str(digits_root), *TINY, "--output_dir", str(tmp_path / "out"),
                      "--output_filename", template])  # fmt: skip
    assert message.replace("\\", "") in capsys.readouterr().err.replace("\\", "")
    assert not list(tmp_path.rglob("*.h5"))


def test_umap_of_digits_shows_ten_separated_clusters(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.metrics import silhouette_score

    digits = load_digits()
    path = tmp_path / "digits_pixels.h5"
    with h5py.File(path, "w") as handle:
        handle["features"] = digits.data.astype(np.float32)
        handle["labels"] = digits.target
        handle.attrs["method"] = "pixels"
    from glovita.configs.plot_umap import PlotUmapConfig
    from glovita.features.umap_plot import plot_umap

    _, embedding, labels = plot_umap(PlotUmapConfig(features_file=path, html=True))  # the CLI: the docs test
    png, page = tmp_path / "digits_pixels_umap.png", (tmp_path / "digits_pixels_umap.html").read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count("<circle") == 1797 and "label 9" in page
    assert silhouette_score(embedding, labels) > 0.4


def test_native_method_extracts_from_every_encoder(digits_root: Path, tmp_path: Path) -> None:
    """torchvision encoders return pooled vectors only: the default method there is native (their own pooling)."""
    extract_main(["--data.dataset", "digits", "--data.data_root_dir", str(digits_root), "--model.encoder.encoder_type",
                  "torchvision", "--model.encoder.type", "resnet18", "--model.encoder.no_pretrained", "--split", "test",
                  "--output_dir", str(tmp_path), "--dataloading.num_workers", "0"])  # fmt: skip
    with h5py.File(tmp_path / "agg_native_resnet18_digits_test_size32_float32.h5") as handle:
        assert handle["features"].shape == (359, 512) and handle.attrs["method"] == "native"
    extract_main(["--data.dataset", "digits", "--data.data_root_dir", str(digits_root), *TINY, "--method", "native",
                  "--split", "test", "--output_dir", str(tmp_path)])  # fmt: skip
    with h5py.File(tmp_path / "agg_native_test_resnet_digits_test_size32_float32.h5") as handle:
        assert handle["features"].shape[0] == 359 and np.isfinite(handle["features"][:]).all()


def test_the_device_flag_chooses_where_the_encoder_runs(digits_root: Path, tmp_path: Path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the message of a machine without CUDA")
    with pytest.raises(SystemExit):
        extract_main(["--data.data_root_dir", str(digits_root), *TINY, "--device", "cuda", "--split", "val",
                      "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert "device='cuda' but no CUDA device is visible. Use --device cpu" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
