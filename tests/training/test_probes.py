"""Linear probes on feature files: full-batch L-BFGS as the default, as good as scikit-learn's logistic
regression on the same files; feature standardisation from training statistics; the L2 grid; resume."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from glovita.cli.train import main
from glovita.datasets.precomputed_features import PrecomputedFeatureDataset, feature_statistics, read_layout
from tests.conftest import feature_args, write_feature_file


def _digits_pixel_files(folder: Path) -> Path:
    """train/val/test.h5 holding the 64 pixel values of scikit-learn's digits (60/20/20, stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    rows = np.arange(len(digits.target))
    rest, test = train_test_split(rows, test_size=0.2, random_state=0, stratify=digits.target)
    train, val = train_test_split(rest, test_size=0.25, random_state=0, stratify=digits.target[rest])
    folder.mkdir()
    for split, members in (("train", train), ("val", val), ("test", test)):
        with h5py.File(folder / f"{split}.h5", "w") as handle:
            handle["features"] = digits.data[members].astype(np.float32)
            handle["labels"] = digits.target[members]
    return folder


def _spec_command(folder: Path, experiments: Path, group: str, *extra: str) -> list[str]:
    """The spec's 'Standard Classification On Feature Files' command on `folder`."""
    return [
        "--data.dataset", "precomputed_features", "--data.data_root_dir", str(folder), "--data.num_classes", "10",
        "--data.train_features_file", "train.h5", "--data.val_features_file", "val.h5",
        "--data.test_features_file", "test.h5", "--model.encoder.encoder_type", "precomputed",
        "--model.encoder.feature_dim", "64", "--model.head.head_type", "classification",
        "--dataloading.batch_size", "512", "--experiments_dir", str(experiments), "--group", group, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def digits_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _digits_pixel_files(tmp_path_factory.mktemp("probe") / "digits_pixels")


def test_spec_feature_command_matches_logistic_regression(digits_features: Path, tmp_path: Path, capsys) -> None:
    from sklearn.linear_model import LogisticRegression

    main(_spec_command(digits_features, tmp_path, "g"))
    run_dir = tmp_path / "precomputed_features" / "g" / "0"
    accuracy = json.loads((run_dir / "test_metrics.json").read_text())["test_accuracy"]
    with h5py.File(digits_features / "train.h5") as train, h5py.File(digits_features / "test.h5") as test:
        baseline = LogisticRegression(max_iter=2000).fit(train["features"][:], train["labels"][:])
        expected = baseline.score(test["features"][:], test["labels"][:])
    assert accuracy >= expected - 0.005, (accuracy, expected)
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["optimizer"]["name"] == "lbfgs"
    assert resolved["optimizer"]["weight_decay"] == pytest.approx(1 / resolved["dataset_sizes"]["train"])
    assert not any("optimizer steps" in w for w in resolved["warnings"])  # an L-BFGS epoch is a whole solve
    assert resolved["dataloading"]["num_workers"] == 0  # features in memory: workers would only copy batches
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "full-batch L-BFGS" in out and "converged" in out


def test_configured_optimizer_is_kept(digits_features: Path, tmp_path: Path) -> None:
    main(_spec_command(digits_features, tmp_path, "configured", "--training.epochs", "1",
                       "--data.probe_optimizer", "configured"))  # fmt: skip
    main(_spec_command(digits_features, tmp_path, "explicit", "--training.epochs", "1", "--optimizer.lr", "0.01"))
    for group, name in (("configured", "adamw"), ("explicit", "adamw")):
        resolved = json.loads((tmp_path / "precomputed_features" / group / "0" / "resolved_config.json").read_text())
        assert resolved["optimizer"]["name"] == name, group


def test_l2_grid_picks_the_best_validation_value(digits_features: Path, tmp_path: Path) -> None:
    grid = ["1e-4", "0.3", "30"]
    main(_spec_command(digits_features, tmp_path, "grid", "--optimizer.name", "lbfgs", "--optimizer.l2_grid",
                       *grid, "--training.epochs", "3"))  # fmt: skip
    run_dir = tmp_path / "precomputed_features" / "grid" / "0"
    selection = json.loads((run_dir / "l2_selection.json").read_text())
    scores = {row["weight_decay"]: row["val_accuracy"] for row in selection["candidates"]}
    assert sorted(scores) == [1e-4, 0.3, 30.0]
    assert scores[30.0] < scores[1e-4]  # a huge penalty underfits
    assert selection["chosen_weight_decay"] == max(scores, key=lambda k: scores[k])
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["optimizer"]["param_groups"][0]["weight_decay"] == selection["chosen_weight_decay"]


def test_lbfgs_resume_continues_exactly(tmp_path: Path) -> None:
    never_converge = ["--optimizer.name", "lbfgs", "--optimizer.max_iter", "3", "--optimizer.tolerance_grad", "0",
                      "--optimizer.tolerance_change", "0", "--model.head.head_type", "classification"]  # fmt: skip
    base = feature_args(tmp_path, "instances", never_converge, group="straight")
    main([*base, "--training.epochs", "3"])
    resumed = feature_args(tmp_path, "instances", never_converge, group="resumed")
    main([*resumed, "--training.epochs", "2"])
    main([*resumed, "--training.epochs", "3", "--training.resume"])
    runs = tmp_path / "exp" / "precomputed_features"
    straight = torch.load(runs / "straight" / "0" / "checkpoints" / "last.pt", weights_only=True)
    again = torch.load(runs / "resumed" / "0" / "checkpoints" / "last.pt", weights_only=True)
    assert straight["epoch"] == again["epoch"] == 2
    for key, value in straight["model"].items():
        assert torch.equal(value, again["model"][key]), key


def test_standardisation_uses_training_statistics(tmp_path: Path) -> None:
    features = np.random.default_rng(0).normal(5.0, 3.0, (40, 8)).astype(np.float32)
    features[:, 3] = 2.0  # a constant dimension keeps std 1
    write_feature_file(tmp_path / "train.h5", "instances", 40, features=features)
    write_feature_file(tmp_path / "val.h5", "instances", 20, seed=1)
    write_feature_file(tmp_path / "test.h5", "instances", 20, seed=2)
    main(feature_args(tmp_path, "instances", ["--model.head.head_type", "classification",
                                              "--data.standardize_features", "--data.data_fraction", "0.5"])
         + ["--training.epochs", "1"])  # fmt: skip
    run_dir = tmp_path / "exp" / "precomputed_features" / "g" / "0"
    weights = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    dataset = PrecomputedFeatureDataset(tmp_path / "train.h5", read_layout(tmp_path / "train.h5"), False, 2, "never")
    from glovita.datasets.splits import subsample

    kept = subsample(dataset.targets.tolist(), 0.5, 0, True)  # the data_fraction subset the run trained on
    expected_std = features[kept].std(0)
    expected_std[3] = 1.0
    torch.testing.assert_close(weights["encoder.feature_mean"], torch.from_numpy(features[kept].mean(0)))
    torch.testing.assert_close(weights["encoder.feature_std"], torch.from_numpy(expected_std), rtol=1e-5, atol=1e-5)
    mean, std = feature_statistics(dataset, kept)
    torch.testing.assert_close(mean, weights["encoder.feature_mean"])


def test_feature_statistics_of_bags_count_every_instance(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "bags.h5", "ptr", 7)
    with h5py.File(path) as handle:
        rows, offsets = handle["features"][:], handle["bag_ptr"][:]
    dataset = PrecomputedFeatureDataset(path, read_layout(path), False, 2, "never")
    mean, std = feature_statistics(dataset, [1, 4])
    chosen = np.concatenate([rows[offsets[1] : offsets[2]], rows[offsets[4] : offsets[5]]])
    torch.testing.assert_close(mean, torch.from_numpy(chosen.mean(0)))
    torch.testing.assert_close(std, torch.from_numpy(chosen.std(0)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.head.dropout", "0.2"], "model.head.dropout makes the loss random"),
        (["--training.precision", "bf16-mixed"], "precision 32"),
    ],
)
def test_lbfgs_refuses_what_breaks_a_full_batch_solve(tmp_path: Path, extra: list[str], message: str, capsys) -> None:
    args = feature_args(tmp_path, "instances", ["--model.head.head_type", "classification"])
    with pytest.raises(SystemExit):
        main([*args, "--optimizer.name", "lbfgs", *extra])
    assert message in capsys.readouterr().err


def test_lbfgs_on_images_names_extraction(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--data.data_root_dir", str(tmp_path / "digits"), "--optimizer.name", "lbfgs"])
    assert "glovita_extract_features" in capsys.readouterr().err
