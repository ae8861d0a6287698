"""Digits are written once as a generic dataset; CIFAR reads torchvision files and explains missing ones."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from glovita.configs.data import Cifar10Config, DigitsConfig
from glovita.datasets.factory import build_datasets


def test_digits_written_once_with_fixed_stratified_split(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    splits = build_datasets(DigitsConfig(data_root_dir=root), input_channels=1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1079, 359, 359)
    assert splits.class_names == [str(i) for i in range(10)]
    written = json.loads((root / "splits.json").read_text())
    assert sum(len(v) for v in written.values()) == 1797
    assert len(set(written["train"]) & set(written["test"])) == 0
    test_labels = [int(i.split("/")[0]) for i in written["test"]]
    assert min(np.bincount(test_labels)) >= 35
    image, label = splits.test[0]
    assert image.size == (8, 8) and label == int(written["test"][0].split("/")[0])
    mtime = (root / "splits.json").stat().st_mtime_ns
    build_datasets(DigitsConfig(data_root_dir=root), input_channels=1)
    assert (root / "splits.json").stat().st_mtime_ns == mtime


def test_digits_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a digits folder"):
        build_datasets(DigitsConfig(data_root_dir=tmp_path / "other"), input_channels=3)


def test_cifar_missing_files_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*--data.download"):
        build_datasets(Cifar10Config(data_root_dir=tmp_path), input_channels=3)


def _write_fake_cifar10(root: Path, per_batch: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 10 for i in range(per_batch)]
        data = rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8)
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": data, "labels": labels}, handle)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, handle)


def test_cifar_reads_files_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import cifar

    _write_fake_cifar10(tmp_path, per_batch=20)
    # The fake files cannot match torchvision's md5 sums; everything after the check is the real code path.
    monkeypatch.setattr(cifar, "check_integrity", lambda *args: True)
    splits = build_datasets(Cifar10Config(data_root_dir=tmp_path, val_fraction=0.2), input_channels=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 20)
    assert splits.class_names == [f"class{i}" for i in range(10)]
    image, label = splits.val[0]
    assert image.size == (32, 32) and 0 <= label < 10
    assert sorted(splits.train_targets) == sorted([i for i in range(10) for _ in range(8)])
