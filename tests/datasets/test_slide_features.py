"""Per-slide feature folders (CLAM / TRIDENT layout): splits, labels, cases, instance sampling and bad input."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from glovita.configs.data import PrecomputedFeaturesConfig
from glovita.datasets.factory import build_datasets, sample_ids
from glovita.modalities.features import BagModality

SLIDES = {  # slide: (case, label, instances, split)
    "s1": ("c1", "tumor", 5, "train"),
    "s2": ("c1", "normal", 3, "train"),
    "s3": ("c2", "normal", 4, "train"),
    "s4": ("c3", "tumor", 6, "val"),
    "s5": ("c4", "normal", 2, "val"),
    "s6": ("c5", "tumor", 7, "test"),
}


def _features(slide: str, count: int, dim: int = 4) -> np.ndarray:
    """Row i of slide sK is K*100 + i in every dim, so a read can be traced back to its slide and rows."""
    return np.repeat((int(slide[1:]) * 100 + np.arange(count, dtype=np.float32))[:, None], dim, axis=1)


def write_slide_folder(root: Path, fmt: str = "h5", split_column: bool = False) -> Path:
    """A CLAM-style folder: h5_files/ (features + coords) or pt_files/, labels.csv and splits/splits_0.csv."""
    files = root / f"{fmt}_files"
    files.mkdir(parents=True)
    for slide, (_, _, count, _) in SLIDES.items():
        features = _features(slide, count)
        if fmt == "h5":
            with h5py.File(files / f"{slide}.h5", "w") as handle:
                handle["features"] = features.astype(np.float16)
                handle["coords"] = np.stack([np.arange(count) * 256, np.zeros(count, dtype=int)], axis=1)
        else:
            torch.save(torch.from_numpy(features), files / f"{slide}.pt")
    header = "case_id,slide_id,label" + (",split" if split_column else "")
    lines = [f"{c},{s},{label}" + (f",{split}" if split_column else "") for s, (c, label, _, split) in SLIDES.items()]
    (root / "labels.csv").write_text("\n".join([header, *lines]) + "\n")
    if not split_column:
        columns = {split: [s for s, v in SLIDES.items() if v[3] == split] for split in ("train", "val", "test")}
        rows = [",train,val,test"]
        for i in range(3):
            rows.append(f"{i}," + ",".join(c[i] if i < len(c) else "" for c in columns.values()))
        (root / "splits").mkdir()
        (root / "splits" / "splits_0.csv").write_text("\n".join(rows) + "\n")
    return root


def slide_config(root: Path, **changes) -> PrecomputedFeaturesConfig:
    fields = dict(
        feature_layout="slide_folder", features_dir=root, labels_csv=root / "labels.csv", num_classes=2,
        splits_dir=root / "splits",
    )  # fmt: skip
    return PrecomputedFeaturesConfig(**{**fields, **changes})


@pytest.mark.parametrize("fmt", ["h5", "pt"])
def test_a_clam_folder_gives_one_bag_per_slide_in_its_split(tmp_path: Path, fmt: str) -> None:
    splits = build_datasets(slide_config(write_slide_folder(tmp_path, fmt)), None)
    assert isinstance(splits.modality, BagModality) and splits.feature_dim == 4
    assert splits.class_names == ["normal", "tumor"]  # sorted names: tumor is class 1
    assert sample_ids(splits.train) == ["s1", "s2", "s3"] and sample_ids(splits.val) == ["s4", "s5"]
    assert sample_ids(splits.test) == ["s6"]
    assert splits.train_targets == [1, 0, 0]
    bag, target = splits.val[0]
    np.testing.assert_array_equal(bag.float().numpy(), _features("s4", 6))
    assert int(target) == 1
    batch = splits.modality.collate([splits.train[0], splits.train[1]])
    assert batch.inputs.shape == (2, 5, 4) and batch.inputs.dtype == torch.float32
    assert batch.valid.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    coords = splits.val.coords(0)
    assert (coords is None) == (fmt == "pt") and (
        coords is None or coords[:, 0].tolist() == [0, 256, 512, 768, 1024, 1280]
    )


def test_split_column_and_given_class_names(tmp_path: Path) -> None:
    root = write_slide_folder(tmp_path, split_column=True)
    splits = build_datasets(slide_config(root, splits_dir=None, class_names=["tumor", "normal"]), None)
    assert sample_ids(splits.train) == ["s1", "s2", "s3"] and splits.train_targets == [0, 1, 1]


def test_max_instances_samples_training_bags_only_and_reproducibly(tmp_path: Path) -> None:
    splits = build_datasets(slide_config(write_slide_folder(tmp_path), max_instances=2), None)
    assert splits.modality.sampled  # the training sampler hands out (index, seed) keys
    first, again, other = (splits.train[(0, seed)][0] for seed in (7, 7, 8))
    assert len(first) == 2 and torch.equal(first, again)
    rows = {int(v) for v in first[:, 0].float()}
    assert rows <= set(range(100, 105))  # rows of slide s1
    assert any(not torch.equal(first, splits.train[(0, seed)][0]) for seed in range(9, 20))
    assert len(splits.train[0][0]) == 5  # a plain index (evaluation) reads every instance
    assert len(splits.test[(0, 7)][0]) == 7  # evaluation splits never sample


def _rewrite(root: Path, slide: str, **datasets) -> None:
    path = root / "h5_files" / f"{slide}.h5"
    path.unlink()
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle[key] = value


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "h5_files" / "s5.h5").unlink(), "have no feature file in .*: s5"),
        (lambda r: _rewrite(r, "s3", coords=np.zeros((4, 2))), r"s3.h5' has no 'features' dataset"),
        (lambda r: _rewrite(r, "s3", features=np.zeros((4, 7))), r"differ in dimension: 4 .*, 7 \(e.g. slide 's3'\)"),
        (lambda r: _rewrite(r, "s2", features=np.zeros((0, 4))), "Slide 's2' .* is an empty bag"),
        (
            lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text().replace("c4,s5", "c1,s5")),
            r"1 case\(s\) have slides in more than one split \(c1 in train, val\)",
        ),
        (
            lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text().replace("c2,s3,normal", "c2,s3,")),
            r"line 4 \(slide 's3'\): label '' is not one of normal, tumor",
        ),
    ],
    ids=["missing", "no_features", "dims", "empty", "case_leak", "bad_label"],
)
def test_bad_slide_folders_fail_naming_the_slide(tmp_path: Path, damage, message: str) -> None:
    root = write_slide_folder(tmp_path)
    damage(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        build_datasets(slide_config(root), None)


def test_non_finite_features_are_refused_when_read(tmp_path: Path) -> None:
    root = write_slide_folder(tmp_path)
    bad = _features("s4", 6)
    bad[3, 2] = np.nan
    _rewrite(root, "s4", features=bad)
    splits = build_datasets(slide_config(root), None)
    with pytest.raises(ValueError, match=r"Slide 's4' .* NaN or infinite values \(instance 3, dim 2\)"):
        splits.val[0]


def test_slide_folder_needs_its_flags() -> None:
    with pytest.raises(ValueError, match="needs --data.features_dir"):
        PrecomputedFeaturesConfig(feature_layout="slide_folder", num_classes=2)
    with pytest.raises(ValueError, match="max_instances .* needs --data.feature_layout slide_folder"):
        PrecomputedFeaturesConfig(train_features_file="a.h5", val_features_file="b.h5", num_classes=2, max_instances=4)


def test_a_100k_instance_slide_goes_through_collate_and_clam(tmp_path: Path) -> None:
    from glovita.models.heads.clam import ClamHead

    root = write_slide_folder(tmp_path)
    _rewrite(root, "s6", features=np.random.default_rng(0).standard_normal((100_000, 4)).astype(np.float16),
             coords=np.zeros((100_000, 2), dtype=np.int64))  # fmt: skip
    splits = build_datasets(slide_config(root), None)
    batch = splits.modality.collate([splits.test[0]])
    assert batch.inputs.shape == (1, 100_000, 4) and bool(batch.valid.all())
    head = ClamHead(4, 2, "sb", "small", 0.0, True, 8, 0.7, "ce", False)
    with torch.no_grad():
        outputs = head(batch.inputs, batch.valid)
    assert outputs.attention.shape == (1, 1, 100_000)
    assert float(outputs.attention.sum()) == pytest.approx(1.0, abs=1e-4)
