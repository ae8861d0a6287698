"""Time series: .ts / .npz reading, lengths, normalisation, folds, policies, errors; training on aeon's GunPoint."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glovita.augmentation.policies.series import POLICIES
from glovita.cli.train import main
from glovita.configs.data import GenericTimeseriesDatasetConfig
from glovita.datasets.factory import build_datasets
from glovita.datasets.splits import kfold_partition
from glovita.datasets.timeseries import read_ts_file
from tests.conftest import series_args, write_ts_file


def test_ts_file_reads_exactly_what_was_written(tmp_path: Path) -> None:
    cases = [np.arange(6, dtype=float).reshape(2, 3) + i for i in range(4)]
    path = write_ts_file(tmp_path / "a.ts", cases, ["b", "a", "b", "a"], classes=["b", "a"])
    read = read_ts_file(path, regression=False)
    assert read.class_labels == ["b", "a"] and read.labels == ["b", "a", "b", "a"]
    for got, wanted in zip(read.series, cases, strict=True):
        np.testing.assert_array_equal(got, wanted)
    assert read.names[2] == "a.ts:2"


def test_ragged_line_is_named(tmp_path: Path) -> None:
    path = write_ts_file(tmp_path / "r.ts", [np.zeros((2, 3))], ["a"], classes=["a"])
    with path.open("a") as handle:
        handle.write("1,2,3:4,5:a\n")  # line 7: channel 1 is shorter
    with pytest.raises(ValueError, match=r"r.ts' line 7 \(case 1\) is ragged: .*channel 0: 3, channel 1: 2"):
        read_ts_file(path, regression=False)


def test_missing_values_name_case_and_channel(tmp_path: Path) -> None:
    path = write_ts_file(tmp_path / "m.ts", [np.zeros((2, 3))], ["a"], classes=["a"])
    with path.open("a") as handle:
        handle.write("1,2,3:4,?,6:a\n")
    with pytest.raises(ValueError, match=r"line 7 \(case 1\), channel 1: holds missing, NaN or infinite values "
                                         r"\(first at time step 1\)"):  # fmt: skip
        read_ts_file(path, regression=False)


def test_unequal_lengths_are_padded_or_resampled_after_per_series_normalisation(tmp_path: Path) -> None:
    short, long = np.array([[1.0, 3.0]]), np.array([[0.0, 2.0, 4.0, 6.0]])
    write_ts_file(tmp_path / "train.ts", [short, long, short, long], ["x", "y", "x", "y"], classes=["x", "y"])
    common = {"train_file": "train.ts", "val_file": "train.ts", "num_classes": 2, "data_root_dir": tmp_path,
              "train_policy": "none"}  # fmt: skip
    padded = build_datasets(GenericTimeseriesDatasetConfig(**common), None).train
    np.testing.assert_allclose(padded[0][0].numpy(), [[-1.0, 1.0, 0.0, 0.0]])  # z-scored, then zeros
    z_long = (long - long.mean()) / long.std()
    np.testing.assert_allclose(padded[1][0].numpy(), z_long, rtol=1e-6)
    resampled = build_datasets(GenericTimeseriesDatasetConfig(**common, length_policy="resample"), None).train
    np.testing.assert_allclose(resampled[0][0].numpy(), [[-1.0, -1 / 3, 1 / 3, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="more than data.series_length=3"):
        build_datasets(GenericTimeseriesDatasetConfig(**common, series_length=3), None)


def test_auto_normalisation_keeps_multivariate_levels(tmp_path: Path) -> None:
    cases = [np.array([[1.0, 2.0, 4.0], [10.0, 10.0, 10.0]]) * (i + 1) for i in range(4)]
    write_ts_file(tmp_path / "t.ts", cases, ["a", "b", "a", "b"], classes=["a", "b"])
    cfg = GenericTimeseriesDatasetConfig(data_root_dir=tmp_path, train_file="t.ts", val_file="t.ts", num_classes=2,
                                         train_policy="none")  # fmt: skip
    splits = build_datasets(cfg, None)
    np.testing.assert_array_equal(splits.val[2][0].numpy(), cases[2])  # multivariate: as stored
    assert splits.modality.pipeline(None, 2).resolved.normalization == "none"
    univariate = [case[:1] for case in cases]
    write_ts_file(tmp_path / "u.ts", univariate, ["a", "b", "a", "b"], classes=["a", "b"])
    splits = build_datasets(cfg.model_copy(update={"train_file": "u.ts", "val_file": "u.ts"}), None)
    values = splits.val[2][0].numpy()
    assert abs(values.mean()) < 1e-6 and values.std() == pytest.approx(1.0, rel=1e-5)  # per series


def test_train_statistics_normalisation_and_npz_regression(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(3.0, 2.0, (10, 2, 5))
    targets = np.linspace(0, 1, 10)
    np.savez(tmp_path / "train.npz", X=values, y=targets)
    np.savez(tmp_path / "val.npz", X=values[:3] * 2, y=targets[:3])
    cfg = GenericTimeseriesDatasetConfig(data_root_dir=tmp_path, train_file="train.npz", val_file="val.npz",
                                         num_classes=1, task="Regression", subtask="regression",
                                         normalization="train_statistics")  # fmt: skip
    splits = build_datasets(cfg, None)
    mean = values.transpose(1, 0, 2).reshape(2, -1).mean(1)[:, None]
    std = values.transpose(1, 0, 2).reshape(2, -1).std(1)[:, None]
    np.testing.assert_allclose(splits.val[1][0].numpy(), (values[1] * 2 - mean) / std, rtol=1e-5)
    assert splits.val[1][1].item() == pytest.approx(targets[1])


def test_validation_folds_partition_the_training_file() -> None:
    labels = [i % 3 for i in range(30)]
    held = [kfold_partition(labels, 5, fold, 0, stratify=True)[1] for fold in range(5)]
    assert sorted(i for fold in held for i in fold) == list(range(30))
    for fold in held:
        assert sorted(labels[i] for i in fold) == [0, 0, 1, 1, 2, 2]


def test_wrong_class_count_and_channels_are_named(tmp_path: Path) -> None:
    write_ts_file(tmp_path / "t.ts", [np.zeros((1, 4))] * 4, ["a", "b", "c", "a"], classes=["a", "b", "c"])
    cfg = GenericTimeseriesDatasetConfig(data_root_dir=tmp_path, train_file="t.ts", num_classes=2, val_fraction=0.5)
    with pytest.raises(ValueError, match=r"data.num_classes=2 but '.*t.ts' has 3 classes \(a, b, c\)"):
        build_datasets(cfg, None)
    splits = build_datasets(cfg.model_copy(update={"num_classes": 3}), None)
    with pytest.raises(ValueError, match="Set --model.encoder.input_channels 1"):
        splits.modality.pipeline(None, 3)


@pytest.mark.parametrize("policy", [name for name in POLICIES if name != "none"])
def test_series_policies_are_seeded_and_keep_the_shape(policy: str) -> None:
    series = torch.sin(torch.linspace(0, 6, 40)).repeat(2, 1)
    transform = POLICIES[policy]
    assert transform is not None
    torch.manual_seed(3)
    first = transform(series)
    torch.manual_seed(3)
    again = transform(series)
    assert first.shape == series.shape and torch.equal(first, again) and not torch.allclose(first, series)


def test_series_data_with_an_image_encoder_names_the_series_family() -> None:
    from glovita.configs.root import RootConfig

    with pytest.raises(ValueError, match="yields time series .* Use --model.encoder.encoder_type series_cnn"):
        RootConfig.model_validate({"data": {"dataset": "generic_timeseries_dataset", "aeon_dataset": "GunPoint",
                                            "num_classes": 2}})  # fmt: skip


def test_inception_time_learns_gunpoint_from_aeon(tmp_path: Path) -> None:
    """The documented command (fewer epochs): InceptionTime on GunPoint as the aeon package ships it."""
    main(["--data.dataset", "generic_timeseries_dataset", "--data.aeon_dataset", "GunPoint", "--data.num_classes",
          "2", "--model.encoder.encoder_type", "series_cnn", "--model.encoder.type", "inception_time",
          "--training.epochs", "20", "--dataloading.batch_size", "8", "--experiments_dir", str(tmp_path),
          "--group", "g"])  # fmt: skip
    run_dir = tmp_path / "generic_timeseries_dataset" / "g" / "0"
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.85, metrics  # 150 test series; chance is 0.5
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["dataset_sizes"] == {"train": 40, "val": 10, "test": 150}
    assert resolved["augmentation"] == {"train_policy": "default_series_1", "channels": 1, "series_length": 150,
                                        "normalization": "per_series"}  # fmt: skip


def test_series_augmentation_preview_draws_every_channel(tmp_path: Path) -> None:
    from PIL import Image

    from glovita.cli.show_augmentations import main as show

    args = series_args(tmp_path)
    data_flags = args[: args.index("--model.encoder.encoder_type")]
    show([*data_flags, "--data.train_policy", "default_series_2", "--num_samples", "3", "--repeats", "2",
          "--output_file", str(tmp_path / "strips.png")])  # fmt: skip
    width, height = Image.open(tmp_path / "strips.png").size
    assert (width, height) == (800, 420)  # 2 channels x 4 in, 3 series x 1.4 in, at 100 dpi


def test_missing_aeon_or_set_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from glovita.datasets.timeseries import aeon_file

    with pytest.raises(ValueError, match=r"has no 'GunPointy_TRAIN.ts'. Sets it ships with .ts files: .*GunPoint"):
        aeon_file("GunPointy", "train")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install -e '.\[timeseries\]'"):
        aeon_file("GunPoint", "train")


def test_folder_of_csv_series_with_a_labels_file(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    cases = {f"s{i}": np.arange(10, dtype=float).reshape(5, 2) * (i + 1) for i in range(6)}
    for name, values in cases.items():
        rows = "\n".join(",".join(f"{v:g}" for v in row) for row in values)
        (folder / f"{name}.csv").write_text("accel_x,accel_y\n" + rows + "\n")
    (tmp_path / "labels.csv").write_text("id,label\n" + "\n".join(f"s{i},{'ab'[i % 2]}" for i in range(6)) + "\n")
    cfg = GenericTimeseriesDatasetConfig(data_root_dir=tmp_path, train_file="train", val_file="train",
                                         labels_file="labels.csv", num_classes=2, normalization="none",
                                         train_policy="none")  # fmt: skip
    splits = build_datasets(cfg, None)
    series, target = splits.val[3]
    np.testing.assert_array_equal(series.numpy(), cases["s3"].T)  # (C, T): one row per channel
    assert splits.class_names == ["a", "b"] and int(target) == 1
    (folder / "s2.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match=r"s2.csv' line 2 is ragged: 1 values, the rows before it have 2"):
        build_datasets(cfg, None)
    (folder / "s2.csv").write_text("1,2\n")
    (folder / "s9.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"has no label for 1 series of .* \(e.g. s9\)"):
        build_datasets(cfg, None)


def test_minirocket_features_train_a_linear_probe(tmp_path: Path) -> None:
    import h5py

    from glovita.cli.extract_features import main as extract

    args = series_args(tmp_path)
    data_flags = args[: args.index("--model.encoder.encoder_type")]
    extract([*data_flags, "--method", "minirocket", "--output_dir", str(tmp_path / "mr"),
             "--output_filename", "{split}.h5"])  # fmt: skip
    with h5py.File(tmp_path / "mr" / "train.h5") as handle:
        assert handle["features"].shape == (24, 9996) and handle.attrs["method"] == "minirocket"  # 30 - val fold
    main(["--data.dataset", "precomputed_features", "--data.data_root_dir", str(tmp_path / "mr"),
          "--data.num_classes", "2", "--data.train_features_file", "train.h5", "--data.val_features_file", "val.h5",
          "--data.test_features_file", "test.h5", "--model.encoder.encoder_type", "precomputed",
          "--model.encoder.feature_dim", "9996", "--experiments_dir", str(tmp_path / "exp"),
          "--group", "mr"])  # fmt: skip
    metrics = json.loads((tmp_path / "exp" / "precomputed_features" / "mr" / "0" / "test_metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9


def test_patchtst_learns_and_names_a_wrong_context_length(tmp_path: Path, capsys) -> None:
    args = series_args(tmp_path)
    start = args.index("--model.encoder.encoder_type")
    common = [*args[:start], *args[start + 6 :]]  # without the series_cnn flags
    tiny = ["--model.encoder.encoder_type", "patchtst", "--model.encoder.input_channels", "2",
            "--model.encoder.patch_length", "6", "--model.encoder.patch_stride", "6", "--model.encoder.d_model", "32",
            "--model.encoder.num_attention_heads", "4", "--model.encoder.num_hidden_layers", "2",
            "--model.encoder.ffn_dim", "64", "--model.encoder.dropout", "0", "--model.encoder.norm_type", "layernorm",
            "--optimizer.lr", "5e-3"]  # fmt: skip
    main([*common, *tiny, "--model.encoder.context_length", "24", "--training.epochs", "15"])
    metrics = json.loads((tmp_path / "exp" / "generic_timeseries_dataset" / "g" / "0" / "test_metrics.json")
                         .read_text())  # fmt: skip
    assert metrics["test_accuracy"] >= 0.8, metrics  # sine vs square waves, 12 test series
    with pytest.raises(SystemExit):
        main([*common[:-2], "--group", "wrong", *tiny, "--model.encoder.context_length", "20"])
    assert "model.encoder.context_length=20 but the series have 24 time steps" in capsys.readouterr().err


def test_pad_mask_gives_zeros_a_mask_and_a_masked_mean(tmp_path: Path) -> None:
    from glovita.models.series_encoder.cnn import SeriesCnnEncoder

    short, long = np.array([[1.0, 3.0]]), np.array([[0.0, 2.0, 4.0, 6.0]])
    write_ts_file(tmp_path / "t.ts", [short, long, short, long], ["x", "y", "x", "y"], classes=["x", "y"])
    cfg = GenericTimeseriesDatasetConfig(data_root_dir=tmp_path, train_file="t.ts", val_file="t.ts", num_classes=2,
                                         length_policy="pad_mask", train_policy="default_series_3")  # fmt: skip
    splits = build_datasets(cfg, None)
    batch = splits.modality.collate([splits.val[0], splits.val[1]])
    assert batch.valid is not None and batch.valid.tolist() == [[True, True, False, False], [True] * 4]
    torch.testing.assert_close(batch.inputs[0, 0], torch.tensor([-1.0, 1.0, 0.0, 0.0]))
    augmented = splits.modality.pipeline(None, 1).train(splits.val[0][0])  # type: ignore[misc]
    assert torch.isfinite(augmented[0, :2]).all() and torch.isnan(augmented[0, 2:]).all()  # padding stays padding
    encoder = SeriesCnnEncoder("fcn", 1).eval()
    with torch.no_grad():
        maps = encoder.forward_features(batch.inputs)
        torch.testing.assert_close(encoder(batch.inputs, batch.valid)[0], maps[0, :, :2].mean(-1))
        torch.testing.assert_close(encoder(batch.inputs, batch.valid)[1], maps[1].mean(-1))
    from glovita.configs.root import RootConfig

    with pytest.raises(ValueError, match="length_policy='pad_mask' masks padded time steps"):
        patchtst = {"encoder": {"encoder_type": "patchtst", "context_length": 4, "patch_length": 2, "patch_stride": 2}}
        RootConfig.model_validate({"data": cfg.model_dump(mode="json"), "model": patchtst})
