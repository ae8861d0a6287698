"""The persistent sample cache (data.cache_dir) of volumes: filled once, read back equal without touching the files,
never stale (a changed file or setting makes a new entry), a damaged or half-written entry rebuilt, and a manifest
of volumes with a named regression column."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glovita.configs.data import GenericVolumeDatasetConfig
from glovita.datasets import volumes as volumes_module
from glovita.datasets.factory import build_datasets
from glovita.datasets.manifest import TargetColumn
from tests.datasets.volume_data import class_volume, make_volume_dataset, write_volume


def _config(root: Path, cache: Path | None, **update: object) -> GenericVolumeDatasetConfig:
    fields: dict = {
        "data_root_dir": root, "num_classes": 2, "volume_size": (12, 12, 12), "target_spacing": (1.5, 1.0, 1.0),
        "spacing_file": Path("spacing.json"), "cache_dir": cache,
    }  # fmt: skip
    fields.update(update)
    return GenericVolumeDatasetConfig(**fields)


def _items(dataset) -> list[torch.Tensor]:
    return [dataset[i][0] for i in range(len(dataset))]


@pytest.fixture
def volume_root(tmp_path: Path) -> Path:
    root = make_volume_dataset(tmp_path / "vols", per_class=4, size=(16, 16, 16))
    ids = json.loads((root / "labels.json").read_text())
    (root / "spacing.json").write_text(json.dumps({i: [1.0, 1.0, 1.0] for i in ids}))
    return root


def test_the_cache_is_filled_once_and_read_back_equal(volume_root: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    plain = _items(build_datasets(_config(volume_root, None), 1).train)
    cached = build_datasets(_config(volume_root, cache), 1).train
    first = _items(cached)
    entries = sorted((cache / "volumes-v1").glob("*.npz"))
    assert len(entries) == len(first) == 4
    for a, b in zip(plain, first, strict=True):
        assert torch.equal(a, b)

    def no_reading(path: Path) -> np.ndarray:
        raise AssertionError(f"read {path} although it is cached")

    monkeypatch.setattr(volumes_module, "read_volume", no_reading)
    again = build_datasets(_config(volume_root, cache), 1).train  # a second run: every sample from the cache
    for a, b in zip(plain, _items(again), strict=True):
        assert torch.equal(a, b)
    assert again.cache.hits == 4 and again.cache.misses == 0


def test_a_changed_file_or_setting_never_reads_an_old_entry(volume_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dataset = build_datasets(_config(volume_root, cache), 1).train
    _items(dataset)
    path = dataset.samples[0][0]
    changed = class_volume(1, 99, (16, 16, 16)) * 3
    write_volume(path, changed)  # a new size or mtime: a new key
    fresh = build_datasets(_config(volume_root, cache), 1).train
    expected = build_datasets(_config(volume_root, None), 1).train[0][0]
    assert torch.equal(fresh[0][0], expected) and fresh.cache.misses == 1
    other = build_datasets(_config(volume_root, cache, volume_size=(10, 12, 12)), 1).train
    assert tuple(other[0][0].shape) == (1, 10, 12, 12)  # another setting: another entry, not the 12^3 one
    assert len(list((cache / "volumes-v1").glob("*.npz"))) == 4 + 1 + 1


def test_a_damaged_or_half_written_entry_is_rebuilt(volume_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dataset = build_datasets(_config(volume_root, cache), 1).train
    expected = _items(dataset)
    entries = sorted((cache / "volumes-v1").glob("*.npz"))
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # a run killed while the disk was writing it
    (cache / "volumes-v1" / ".tmp-killed.npz").write_bytes(b"partial")  # a temporary file left by a kill
    again = build_datasets(_config(volume_root, cache), 1).train
    for a, b in zip(expected, _items(again), strict=True):
        assert torch.equal(a, b)
    assert again.cache.misses == 1 and again.cache.hits == 3
    third = build_datasets(_config(volume_root, cache), 1).train
    _items(third)
    assert third.cache.hits == 4  # the damaged entry was written again


def test_a_volume_manifest_gives_named_targets(volume_root: Path) -> None:
    ids = json.loads((volume_root / "labels.json").read_text())
    splits = json.loads((volume_root / "splits.json").read_text())
    split_of = {i: name for name, members in splits.items() for i in members}
    lines = ["volume,split,label,mean"] + [
        f"volumes/{i},{split_of[i]},{label},{'' if n == 0 else n / 10}" for n, (i, label) in enumerate(ids.items())
    ]
    (volume_root / "manifest.csv").write_text("\n".join(lines) + "\n")
    cfg = _config(volume_root, None, split_source="csv")
    splits_built = build_datasets(cfg, 1, [TargetColumn("mean", classes=False, num_outputs=1)])
    sample = splits_built.train[0]
    assert splits_built.class_names == ["class0", "class1"]
    assert set(sample) >= {"input", "targets", "mean"} and torch.isnan(sample["mean"]).all()  # row 0: empty cell
    assert float(splits_built.train[1]["mean"]) == pytest.approx(0.1)
