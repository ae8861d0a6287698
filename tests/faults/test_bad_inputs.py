"""Inputs that used to give silently wrong numbers: each is refused or warned about, naming the file and fix."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from glovita.configs.data import GenericImageDatasetConfig, PrecomputedFeaturesConfig
from glovita.datasets.factory import build_datasets
from tests.conftest import write_feature_file, write_images


def _dataset(tmp_path: Path, splits: dict[str, list[str]], labels: dict[str, object] | None = None) -> Path:
    """images/<class>/*.png for classes a and b (6 each), splits.json as given, optional labels.json."""
    root = tmp_path / "ds"
    for label, name in enumerate("ab"):
        write_images(root / "images" / name, label, 6)
    (root / "splits.json").write_text(json.dumps(splits))
    if labels is not None:
        (root / "labels.json").write_text(json.dumps(labels))
    return root


def _ids(name: str, indices: range) -> list[str]:
    """Ids of the images `write_images` wrote for class `name` (label = its position in "ab")."""
    return [f"{name}/{'ab'.index(name)}_{i:03d}.png" for i in indices]


def test_a_sample_in_two_splits_is_refused_unless_allowed(tmp_path: Path) -> None:
    train = _ids("a", range(4)) + _ids("b", range(4))
    splits = {"train": train, "val": [*_ids("a", range(4, 6)), train[0]], "test": _ids("b", range(4, 6)) * 2}
    root = _dataset(tmp_path, splits)
    cfg = GenericImageDatasetConfig(data_root_dir=root, num_classes=2)
    with pytest.raises(ValueError) as err:
        build_datasets(cfg, 3)
    message = str(err.value)
    assert "2 listed twice in test (e.g. b/1_004.png, b/1_005.png)" in message
    assert "1 in both train and val (e.g. a/0_000.png)" in message and "--data.allow_overlapping_splits" in message
    allowed = build_datasets(cfg.model_copy(update={"allow_overlapping_splits": True}), 3)
    assert len(allowed.val) == 3 and len(allowed.test) == 4  # type: ignore[arg-type]


def test_one_file_spelled_two_ways_in_two_splits_is_an_overlap(tmp_path: Path) -> None:
    train = _ids("a", range(4)) + _ids("b", range(4))
    splits = {"train": train, "val": [f"./{train[0]}", train[1].replace("/", "//")], "test": _ids("b", range(4, 6))}
    cfg = GenericImageDatasetConfig(data_root_dir=_dataset(tmp_path, splits), num_classes=2)
    with pytest.raises(ValueError, match=r"2 in both train and val \(e.g. a/0_000.png, a/0_001.png\)"):
        build_datasets(cfg, 3)


def test_folders_users_really_have(tmp_path: Path) -> None:
    """images/train with a .ipynb_checkpoints folder, images/validation for val, and a labels CSV from Excel (a
    byte-order mark, semicolons) are read as meant."""
    root = tmp_path / "ds"
    for split in ("train", "validation"):
        for label, name in enumerate("ab"):
            write_images(root / "images" / split / name, label, 3, prefix=split)
    write_images(root / "images" / "train" / ".ipynb_checkpoints", 0, 2)
    cfg = GenericImageDatasetConfig(data_root_dir=root, num_classes=2, split_source="subdirs", label_source="folder")
    splits = build_datasets(cfg, 3)
    assert splits.class_names == ["a", "b"] and len(splits.train) == 6 and len(splits.val) == 6  # type: ignore[arg-type]
    ids = [p.relative_to(root / "images").as_posix() for p in sorted((root / "images").rglob("*.png"))]
    (root / "labels.csv").write_bytes(
        "\ufeffimage;label\n".encode() + "".join(f"{i};{i.split('/')[1]}\n" for i in ids).encode()
    )
    cfg = cfg.model_copy(update={"label_source": "csv"})
    assert build_datasets(cfg, 3).class_names == ["a", "b"]


def test_nan_regression_label_is_refused_naming_the_file_and_id(tmp_path: Path) -> None:
    ids = _ids("a", range(6)) + _ids("b", range(6))
    labels: dict[str, object] = {i: 0.5 for i in ids}
    labels[ids[3]] = float("nan")
    root = _dataset(tmp_path, {"train": ids[:8], "val": ids[8:]}, labels)
    cfg = GenericImageDatasetConfig(
        data_root_dir=root, num_classes=1, task="Regression", subtask="regression", label_source="json"
    )
    with pytest.raises(ValueError, match=rf"labels.json': the regression label nan of '{ids[3]}' is not a finite"):
        build_datasets(cfg, 3)


def test_nan_regression_label_in_a_feature_file_is_refused(tmp_path: Path) -> None:
    labels = np.linspace(0, 1, 10).astype(np.float32)
    labels[7] = np.inf
    path = write_feature_file(tmp_path / "r.h5", "instances", 10, labels=labels)
    cfg = PrecomputedFeaturesConfig(
        data_root_dir=tmp_path, num_classes=1, task="Regression", subtask="regression",
        train_features_file=path, val_features_file=path, allow_overlapping_splits=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"r.h5': 1 regression label\(s\) are NaN or inf \(e.g. s7\)"):
        build_datasets(cfg, 3)


def test_nan_regression_targets_of_series_files_are_refused_naming_the_file_and_case(tmp_path: Path) -> None:
    """An .npz with a NaN in y, and a CSV-folder labels file with an empty or non-numeric label: one line naming the
    file and the case, not a FloatingPointError after training started."""
    from glovita.datasets.timeseries import read_series_file

    targets = np.linspace(0, 1, 6)
    targets[4] = np.nan
    np.savez(tmp_path / "s.npz", X=np.random.default_rng(0).normal(size=(6, 2, 20)), y=targets)
    with pytest.raises(ValueError, match=r"s.npz' case 4: regression target nan is not a finite number"):
        read_series_file(tmp_path / "s.npz", regression=True)
    folder = tmp_path / "series"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.csv").write_text("1.0,2.0\n3.0,4.0\n5.0,6.0\n")
    (tmp_path / "labels.csv").write_text("id,label\na,0.5\nb,\nc,1.5\n")
    with pytest.raises(ValueError, match=r"labels.csv' id 'b': regression target '' is not a finite number"):
        read_series_file(folder, regression=True, labels_file=tmp_path / "labels.csv")


def test_one_feature_file_for_two_splits_is_refused_unless_allowed(tmp_path: Path) -> None:
    """The same file, or a byte-identical copy, as training and test features: refused before training."""
    import shutil

    path = write_feature_file(tmp_path / "train.h5", "instances", 10)
    shutil.copy(path, tmp_path / "copy.h5")
    other = write_feature_file(tmp_path / "val.h5", "instances", 10, seed=3)
    for test_file, shown in ((path, "train.h5"), (tmp_path / "copy.h5", "copy.h5")):
        cfg = PrecomputedFeaturesConfig(
            data_root_dir=tmp_path, num_classes=2, train_features_file=path, val_features_file=other,
            test_features_file=test_file,
        )  # fmt: skip
        message = rf"train_features_file and data.test_features_file are the same features \('.*{shown}'\): the run"
        with pytest.raises(ValueError, match=message + " would train on what it evaluates"):
            build_datasets(cfg, 3)
    allowed = cfg.model_copy(update={"allow_overlapping_splits": True})
    assert build_datasets(allowed, 3).test is not None


def test_an_extraction_template_writing_every_split_to_one_file_is_refused(tmp_path: Path, capsys) -> None:
    from glovita.cli.extract_features import main as extract

    root = tmp_path / "imgs"
    for split in ("train", "val"):
        for label, name in enumerate("ab"):
            write_images(root / "images" / split / name, label, 2, prefix=split)
    with pytest.raises(SystemExit):
        extract(["--output_dir", str(tmp_path / "f"), "--output_filename", "same.h5", "--data.dataset",
                 "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes", "2",
                 "--data.split_source", "subdirs", "--data.label_source", "folder", "--model.encoder.type",
                 "test_resnet", "--model.encoder.no_pretrained"])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "output_filename='same.h5' gives one file for the splits train, val" in err and "Put {split} in it" in err
    assert not (tmp_path / "f" / "same.h5").exists()


def test_labels_for_images_that_do_not_exist_are_warned_about(tmp_path: Path) -> None:
    ids = _ids("a", range(6)) + _ids("b", range(6))
    labels = {**{i: i[0] for i in ids}, "a/typo.jpg": "a", "b/gone.png": "b"}
    root = _dataset(tmp_path, {"train": ids[:8], "val": ids[8:]}, labels)
    cfg = GenericImageDatasetConfig(data_root_dir=root, num_classes=2, label_source="json")
    with pytest.warns(UserWarning, match=r"names 2 image\(s\) that do not exist under .* \(e.g. 'a/typo.jpg'\)"):
        splits = build_datasets(cfg, 3)
    assert len(splits.train) == 8  # type: ignore[arg-type]


def test_a_class_missing_from_val_is_named_and_left_out_of_macro_metrics(tmp_path: Path, capsys) -> None:
    from glovita.cli.train import main
    from tests.conftest import generic_args

    root = tmp_path / "ds"
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for label, name in enumerate("abc"):
            if not (split == "val" and name == "c"):
                write_images(root / "images" / split / name, label, count, prefix=split)
    main(generic_args(root, tmp_path / "exp", 3, "--group", "g", "--training.epochs", "1"))
    captured = capsys.readouterr()
    out = " ".join((captured.out + captured.err).split())
    assert "warning: the val split has no samples of class 'c'; its macro metrics average over the classes" in out
    run = tmp_path / "exp" / "generic_image_dataset" / "g" / "0"
    record = _strict_json((run / "metrics.jsonl").read_text())  # strict JSON: an undefined metric is null, not NaN
    assert record["val_f1_class_2"] is None
    assert record["val_f1_macro"] == pytest.approx((record["val_f1_class_0"] + record["val_f1_class_1"]) / 2)
    for name in ("test_metrics.json", "runtime_info.json", "resolved_config.json"):
        _strict_json((run / name).read_text())
    from glovita.runtime.io import read_metrics

    assert math.isnan(read_metrics(run)[0]["val_f1_class_2"])  # GloViTa's own readers: NaN again


def _strict_json(text: str) -> dict:
    """Parse as strict JSON parsers (jq, JSON.parse) do: bare NaN / Infinity fail."""
    return json.loads(text, parse_constant=lambda word: pytest.fail(f"bare {word} in a JSON file"))


def test_every_split_is_checked_before_the_first_step(tmp_path: Path, capsys) -> None:
    from glovita.cli.train import main
    from tests.conftest import generic_args

    root = tmp_path / "ds"
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for label, name in enumerate("ab"):
            write_images(root / "images" / split / name, label, count, prefix=split)
    (root / "images" / "val" / "a" / "junk.png").write_bytes(b"not an image")
    (root / "images" / "test" / "b" / "empty.png").write_bytes(b"")
    args = generic_args(root, tmp_path / "exp", 2, "--group", "g", "--training.epochs", "1")
    with pytest.raises(SystemExit):
        main(args)
    err = " ".join(capsys.readouterr().err.split())
    assert "2 of 26 files of the dataset cannot be used:" in err  # both named at once, before any training
    assert "val: '" in err and "junk.png' is not a readable image" in err and "empty.png' is not a readable" in err
    assert not (tmp_path / "exp" / "generic_image_dataset" / "g" / "0" / "config.json").exists()
    assert "--data.no_check_files" in err


def test_weights_of_another_architecture_are_refused_not_half_loaded(tmp_path: Path) -> None:
    import timm
    import torch

    from glovita.configs.model import ModelConfig, TimmEncoderConfig
    from glovita.configs.peft import FullFinetuningConfig
    from glovita.models.factory import build_encoder, build_model
    from glovita.runtime.io import save_torch

    source = build_model(ModelConfig(encoder=TimmEncoderConfig(type="resnet18", pretrained=False)),
                         FullFinetuningConfig(), 3, 0.0)  # fmt: skip
    checkpoint = tmp_path / "best.pt"
    save_torch({"model": source.state_dict(), "glovita_version": "test", "epoch": 0}, checkpoint)
    other = TimmEncoderConfig(type="resnet50", pretrained_path=checkpoint)
    with pytest.raises(ValueError, match=r"best.pt' fits only \d+ of this encoder's \d+ weight tensors \(\d+%"):
        build_encoder(ModelConfig(encoder=other))
    partial = build_encoder(ModelConfig(encoder=other, allow_partial_load=True))  # on purpose: what fits loads
    torch.testing.assert_close(partial.model.conv1.weight, source.encoder.model.conv1.weight)
    plain = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), plain)
    with pytest.raises(ValueError, match="the weights do not fit timm model 'resnet50' .* another architecture"):
        build_encoder(ModelConfig(encoder=TimmEncoderConfig(type="resnet50", pretrained_path=plain)))


@pytest.mark.parametrize("kind", ["8-bit", "16-bit png", "16-bit tiff", "palette", "float tiff"])
def test_images_keep_their_dynamic_range(kind: str, tmp_path: Path) -> None:
    """What the test policy makes (mean 0, std 1: no normalisation) equals the stored values over their range."""
    import tifffile
    import torch
    from PIL import Image

    from glovita.augmentation.factory import build_transform
    from glovita.augmentation.preprocessing import Preprocessing
    from glovita.datasets.generic_image import GenericImageDataset

    ramp = np.linspace(0.0, 1.0, 16 * 16, dtype=np.float64).reshape(16, 16)
    path = tmp_path / ("image.tif" if "tiff" in kind else "image.png")
    if kind == "8-bit":
        stored = np.round(ramp * 255).astype(np.uint8)
        Image.fromarray(stored).save(path)
        expected = stored / 255
    elif kind == "palette":
        stored = np.round(ramp * 255).astype(np.uint8)
        Image.fromarray(stored).convert("P").save(path)
        expected = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    elif kind == "float tiff":
        tifffile.imwrite(path, ramp.astype(np.float32))
        expected = ramp
    else:
        stored = np.round(ramp * 65535).astype(np.uint16)
        Image.fromarray(stored).save(path) if kind == "16-bit png" else tifffile.imwrite(path, stored)
        expected = stored / 65535
    image, _ = GenericImageDataset([(path, 0)], "L")[0]
    params = Preprocessing(16, 16, (0.0,), (1.0,), "bilinear")
    view = build_transform("default", params, "data.augmentation.test_policy")(image)
    torch.testing.assert_close(view[0].double(), torch.from_numpy(expected), atol=1e-6, rtol=0)
    assert len(np.unique(view.numpy())) > 200  # not collapsed to a few levels (16-bit used to become 0/255)


def test_an_output_folder_that_cannot_be_written_stops_the_tools_before_any_work(tmp_path: Path, capsys) -> None:
    """--output_dir under a file: glovita_infer, glovita_export and glovita_extract_features answer in one line
    naming the folder, before reading a checkpoint or a dataset (the checkpoint here does not even exist)."""
    from glovita.cli.export import main as export
    from glovita.cli.extract_features import main as extract
    from glovita.cli.infer import main as infer

    (tmp_path / "blocker").write_text("a file, not a folder")
    target = tmp_path / "blocker" / "out"
    missing = str(tmp_path / "no_run" / "checkpoints" / "best.pt")
    for tool, args in (
        (infer, ["--checkpoint_path", missing]),
        (export, ["--checkpoint_path", missing]),
        (extract, ["--data.dataset", "digits", "--data.data_root_dir", str(tmp_path / "digits")]),
    ):
        with pytest.raises(SystemExit):
            tool([*args, "--output_dir", str(target)])
        err = " ".join(capsys.readouterr().err.split())
        assert f"--output_dir '{target}' cannot be written (Not a directory)" in err, err
    assert not (tmp_path / "digits").exists()  # nothing was prepared


def test_an_empty_training_split_is_named_not_blamed_on_the_batch_size(tmp_path: Path, capsys) -> None:
    from glovita.cli.train import main as train

    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    for label, name in enumerate("ab"):
        write_images(root / "images" / "val" / name, label, 2)
    with pytest.raises(SystemExit):
        train(["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes",
               "2", "--data.split_source", "subdirs", "--data.label_source", "folder", "--dataloading.no_drop_last",
               "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--experiments_dir",
               str(tmp_path / "exp")])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "The training split has no samples" in err and "no_drop_last" not in err, err
