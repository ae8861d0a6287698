"""Generic image dataset: every split/label source returns exactly the labels the test wrote; clear errors."""

import json
from pathlib import Path

import pytest
from PIL import Image

from glovita.configs.data import GenericImageDatasetConfig
from glovita.datasets.factory import build_datasets


def _build(root: Path, **fields):
    cfg = GenericImageDatasetConfig(data_root_dir=root, **{"num_classes": 2, **fields})
    return build_datasets(cfg, input_channels=3)


def _labels(dataset) -> list:
    return [dataset[i][1] for i in range(len(dataset))]


def test_subdirs_with_folder_labels(subdirs_dataset: Path) -> None:
    splits = _build(subdirs_dataset, num_classes=3, split_source="subdirs", label_source="folder")
    assert splits.class_names == ["a", "b", "c"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 12, 12)
    assert sorted(_labels(splits.train)) == [0] * 12 + [1] * 12 + [2] * 12
    image, _ = splits.train[0]
    assert image.mode == "RGB" and image.size == (32, 32)


@pytest.mark.parametrize("label_source", ["folder", "json", "csv"])
def test_splits_json_with_each_label_source(splits_json_dataset: Path, label_source: str) -> None:
    splits = _build(splits_json_dataset, label_source=label_source)
    assert splits.class_names == ["cat", "dog"]
    written = json.loads((splits_json_dataset / "splits.json").read_text())
    expected = [0 if i.startswith("cat/") else 1 for i in written["test"]]
    assert _labels(splits.test) == expected
    assert len(splits.train) == 18 and len(splits.val) == 6


def test_integer_labels_are_class_indices(splits_json_dataset: Path) -> None:
    labels = json.loads((splits_json_dataset / "labels.json").read_text())
    (splits_json_dataset / "labels.json").write_text(json.dumps({k: int(v == "cat") for k, v in labels.items()}))
    splits = _build(splits_json_dataset, label_source="json")
    assert splits.class_names == ["0", "1"]
    assert splits.train[0][1] == int(splits.train.samples[0][0].parent.name == "cat")


def test_folds_select_validation_partition(splits_json_dataset: Path) -> None:
    written = json.loads((splits_json_dataset / "splits.json").read_text())
    pool = written["train"] + written["val"]
    folds = {"0": pool[0::3], "1": pool[1::3], "2": pool[2::3], "test": written["test"]}
    (splits_json_dataset / "splits.json").write_text(json.dumps(folds))
    for fold in range(3):
        splits = _build(splits_json_dataset, fold=fold)
        val_ids = [p.relative_to(splits_json_dataset / "images").as_posix() for p, _ in splits.val.samples]
        train_ids = {p.relative_to(splits_json_dataset / "images").as_posix() for p, _ in splits.train.samples}
        assert val_ids == folds[str(fold)]
        assert train_ids == set(pool) - set(val_ids)
    with pytest.raises(ValueError, match="data.fold=5 .* has folds 0, 1, 2"):
        _build(splits_json_dataset, fold=5)


def test_val_fraction_holds_out_part_of_train(subdirs_dataset: Path) -> None:
    import shutil

    shutil.rmtree(subdirs_dataset / "images" / "val")
    with pytest.raises(ValueError, match="--data.val_fraction"):
        _build(subdirs_dataset, num_classes=3, split_source="subdirs")
    splits = _build(subdirs_dataset, num_classes=3, split_source="subdirs", val_fraction=0.25)
    assert len(splits.val) == 9 and len(splits.train) == 27
    assert sorted(_labels(splits.val)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_regression_targets_from_csv(regression_dataset: Path) -> None:
    splits = _build(regression_dataset, num_classes=1, task="Regression", subtask="regression", label_source="csv")
    assert splits.class_names == []
    _, target = splits.train[0]
    assert target.shape == (1,) and target.dtype.is_floating_point
    assert sorted({float(splits.train[i][1]) for i in range(len(splits.train))}) == [0.0, 0.5, 1.0, 1.5]


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_images_converted_to_encoder_channels(subdirs_dataset: Path, channels: int, mode: str) -> None:
    cfg = GenericImageDatasetConfig(data_root_dir=subdirs_dataset, num_classes=3, split_source="subdirs")
    assert build_datasets(cfg, input_channels=channels).train[0][0].mode == mode


def test_data_fraction_subsamples_train_per_class(subdirs_dataset: Path) -> None:
    splits = _build(subdirs_dataset, num_classes=3, split_source="subdirs", data_fraction=0.5)
    assert len(splits.train) == 18
    assert sorted(splits.train_targets) == [0] * 6 + [1] * 6 + [2] * 6


def test_missing_root_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data.data_root_dir: '.*nowhere' does not exist"):
        _build(tmp_path / "nowhere")


def test_wrong_num_classes_says_how_many(splits_json_dataset: Path) -> None:
    with pytest.raises(
        ValueError, match=r"data.num_classes=3 but .* has 2 classes \(cat, dog\). Set --data.num_classes 2"
    ):
        _build(splits_json_dataset, num_classes=3)


def test_missing_label_names_the_image(splits_json_dataset: Path) -> None:
    labels = json.loads((splits_json_dataset / "labels.json").read_text())
    labels.pop("cat/0_000.png")
    (splits_json_dataset / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match="no label for 1 image.*cat/0_000.png"):
        _build(splits_json_dataset, label_source="json")


def test_csv_without_column_names_the_flag(splits_json_dataset: Path) -> None:
    with pytest.raises(ValueError, match="no column 'path'.*--data.csv_id_column"):
        _build(splits_json_dataset, label_source="csv", csv_id_column="path")


def test_corrupt_image_error_names_the_file(subdirs_dataset: Path) -> None:
    bad = subdirs_dataset / "images" / "train" / "a" / "broken.png"
    bad.write_bytes(b"not a png at all")
    splits = _build(subdirs_dataset, num_classes=3, split_source="subdirs")
    index = [p for p, _ in splits.train.samples].index(bad)
    with pytest.raises(ValueError, match="Cannot read image file '.*broken.png'"):
        splits.train[index]


def test_grayscale_and_rgba_files_load_as_rgb(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    for split in ("train", "val"):
        for name, mode in (("g", "L"), ("r", "RGBA")):
            folder = root / "images" / split / name
            folder.mkdir(parents=True)
            Image.new(mode, (16, 16)).save(folder / "x.png")
    splits = _build(root, split_source="subdirs")
    assert {splits.train[i][0].mode for i in range(2)} == {"RGB"}


def test_an_imagefolder_layout_is_recognised_and_split_by_one_flag(tmp_path: Path, capsys) -> None:
    from glovita.cli.train import main as train
    from tests.conftest import write_images

    root = tmp_path / "pets"  # torchvision's ImageFolder: root/<class>/*.png, no split folders
    for label, name in enumerate(("cat", "dog", "fox")):
        write_images(root / name, label, 20)
    with pytest.raises(SystemExit):
        train(["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes",
               "3", "--experiments_dir", str(tmp_path / "exp")])  # fmt: skip
    error = capsys.readouterr().err
    assert "ImageFolder layout (class folders cat, dog, fox" in error
    assert "--data.split_source imagefolder --data.images_dir ." in error and len(error.strip().splitlines()) <= 2
    splits = _build(root, num_classes=3, split_source="imagefolder", images_dir=".")
    assert splits.class_names == ["cat", "dog", "fox"]
    assert [len(s) for s in (splits.train, splits.val, splits.test)] == [48, 6, 6]  # 16 / 2 / 2 of each class
    for split in (splits.train, splits.val, splits.test):
        labels = _labels(split)
        assert sorted(set(labels)) == [0, 1, 2] and labels.count(0) == labels.count(1) == labels.count(2)
    ids = [{str(p) for p, _ in split.samples} for split in (splits.train, splits.val, splits.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and len(set.union(*ids)) == 60
    again = _build(root, num_classes=3, split_source="imagefolder", images_dir=".")
    assert [str(p) for p, _ in again.test.samples] == [str(p) for p, _ in splits.test.samples]  # the same each run
    shares = _build(root, num_classes=3, split_source="imagefolder", images_dir=".", val_fraction=0.2,
                    test_fraction=0.25)  # fmt: skip
    assert (len(shares.train), len(shares.val), len(shares.test)) == (33, 12, 15)
    with pytest.raises(ValueError, match="needs --data.split_source imagefolder"):
        GenericImageDatasetConfig(data_root_dir=root, num_classes=3, test_fraction=0.1)
