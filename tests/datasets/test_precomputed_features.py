"""HDF5 feature files: the three layouts, masked bag collation, lazy reads, and errors naming file/key/shape."""

import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from glovita.configs.data import PrecomputedFeaturesConfig
from glovita.datasets.factory import build_datasets
from tests.conftest import write_feature_file


def _splits(tmp_path: Path, layout: str, load: str = "auto", **extra):
    train = write_feature_file(tmp_path / "train.h5", layout, 20, **extra)
    val = write_feature_file(tmp_path / "val.h5", layout, 6, seed=1)
    cfg = PrecomputedFeaturesConfig(
        num_classes=2, train_features_file=train, val_features_file=val, load_into_memory=load
    )
    return build_datasets(cfg, input_channels=3)


@pytest.mark.parametrize(("layout", "kind"), [("instances", "instances"), ("fixed", "bags"), ("ptr", "bags"),
                                              ("lengths", "bags")])  # fmt: skip
@pytest.mark.parametrize("load", ["always", "never"])
def test_layouts_load_exactly_what_was_written(tmp_path: Path, layout: str, kind: str, load: str) -> None:
    splits = _splits(tmp_path, layout, load)
    assert splits.modality.name == kind and splits.feature_dim == 8 and len(splits.train) == 20
    with h5py.File(tmp_path / "train.h5") as handle:
        stored = handle["features"][:]
        ptr = handle["bag_ptr"][:] if "bag_ptr" in handle else None
        lengths = handle["bag_lengths"][:] if "bag_lengths" in handle else None
    features, label = splits.train[3]
    assert int(label) == 1
    if layout == "instances":
        expected = stored[3]
    elif layout == "fixed":
        expected = stored[3]
    else:
        offsets = ptr if ptr is not None else np.concatenate([[0], np.cumsum(lengths)])
        expected = stored[offsets[3] : offsets[4]]
    assert np.array_equal(features.numpy(), expected)


def test_bag_collation_pads_and_masks(tmp_path: Path) -> None:
    splits = _splits(tmp_path, "lengths")
    samples = [splits.train[i] for i in range(4)]
    batch = splits.modality.collate(samples)
    lengths = [s[0].shape[0] for s in samples]
    assert batch.inputs.shape == (4, max(lengths), 8)
    assert batch.valid is not None and batch.valid.sum(1).tolist() == lengths
    for i, (bag, _) in enumerate(samples):
        assert torch.equal(batch.inputs[i, : lengths[i]], bag)
        assert batch.inputs[i, lengths[i] :].abs().sum() == 0
    assert batch.targets.tolist() == [0, 1, 0, 1]


def test_instance_batches_come_stacked_from_one_read(tmp_path: Path) -> None:
    for load in ("always", "never"):
        splits = _splits(tmp_path, "instances", load)
        batch = splits.modality.collate(splits.train.__getitems__([5, 1, 3]))
        assert torch.equal(batch.inputs[1], splits.train[1][0]) and batch.targets.tolist() == [1, 1, 1]
        assert torch.equal(batch.inputs[0], splits.train[5][0]) and batch.valid is None


def test_regression_labels(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "r.h5", "instances", 10, labels=np.linspace(0, 1, 10).astype(np.float32))
    cfg = PrecomputedFeaturesConfig(
        num_classes=1,
        task="Regression",
        subtask="regression",
        train_features_file=path,
        val_features_file=path,
        allow_overlapping_splits=True,
    )
    splits = build_datasets(cfg, 3)
    assert splits.train[9][1].tolist() == [1.0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"bag_ptr": np.array([0, 5, 9])}, r"'bag_ptr' must have 21 entries .* running from 0 to the"),
        ({"bag_lengths": np.full(20, 3)}, r"'bag_lengths' must hold 20 non-negative lengths .* summing to the"),
        ({"labels": np.arange(5)}, r"'features' \(20, 8\) has 20 rows but 'labels' has 5"),
        ({"labels": np.full(20, 7)}, r"labels \[7\] are outside 0..1"),
        ({"labels": np.full(20, 0.5)}, "classification needs integer 'labels'"),
    ],
)
def test_bad_files_name_file_key_and_shape(tmp_path: Path, extra: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _splits(tmp_path, "instances", **extra)


def test_missing_key_lists_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as handle:
        handle["feats"] = np.zeros((3, 2))
        handle["labels"] = np.zeros(3, dtype=int)
    cfg = PrecomputedFeaturesConfig(
        num_classes=2, train_features_file=path, val_features_file=path, allow_overlapping_splits=True
    )
    with pytest.raises(ValueError, match=r"train.h5' has no 'features' dataset \(keys: feats, labels\)"):
        build_datasets(cfg, 3)


@pytest.mark.parametrize("load", ["always", "never"])
@pytest.mark.parametrize(("dtype", "bad"), [(np.float32, np.nan), (np.float16, np.nan), (np.float16, -np.inf)])
def test_nan_features_are_reported_with_position(tmp_path: Path, load: str, dtype, bad: float) -> None:
    features = np.zeros((20, 8), dtype=dtype)
    features[4, 2] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \((whole file|rows 4..4), first at \[(4, 2|0, 2)\]"):
        splits = _splits(tmp_path, "instances", load, features=features)
        splits.train[4]


def test_whole_file_check_is_chunked_and_remembered_until_the_file_changes(tmp_path: Path) -> None:
    from glovita.datasets.precomputed_features import PrecomputedFeatureDataset, known_finite, read_layout

    features = np.ones((20_000, 256), dtype=np.float16)  # 8,192 rows per 4 MB chunk: three chunks
    path = write_feature_file(tmp_path / "big.h5", "instances", 20_000, features=features)
    PrecomputedFeatureDataset(path, read_layout(path), False, 2, "always")
    assert not known_finite(path)  # written just now: not remembered (mtimes are coarse)
    os.utime(path, (time.time() - 60, time.time() - 60))
    clean = PrecomputedFeatureDataset(path, read_layout(path), False, 2, "always")
    assert clean.in_memory and np.array_equal(clean[19_999][0].numpy(), features[19_999])
    assert known_finite(path)
    features[17_000, 5] = np.nan  # in the third chunk
    write_feature_file(path, "instances", 20_000, features=features)
    assert not known_finite(path)  # rewritten: size or mtime differ
    with pytest.raises(ValueError, match=r"NaN or infinite values \(whole file, first at \[17000, 5\]\)"):
        PrecomputedFeatureDataset(path, read_layout(path), False, 2, "always")


def test_files_must_share_layout(tmp_path: Path) -> None:
    train = write_feature_file(tmp_path / "train.h5", "instances", 10)
    val = write_feature_file(tmp_path / "val.h5", "ptr", 4)
    cfg = PrecomputedFeaturesConfig(num_classes=2, train_features_file=train, val_features_file=val)
    with pytest.raises(ValueError, match="val_features_file .* holds 4 variable-size bags .* same layout"):
        build_datasets(cfg, 3)
