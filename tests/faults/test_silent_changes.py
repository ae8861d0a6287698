"""Data that used to change without a word: each is now done as the user's tools do it, or refused naming the
file and the fix."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def _photo(width: int, height: int) -> Image.Image:
    """A non-square RGB image with structure everywhere (so a different resize or crop changes many pixels)."""
    rows, cols = np.mgrid[0:height, 0:width]
    channels = [(rows * 7 + cols * 3) % 256, (rows * cols) % 251, (cols * 11) % 256]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


@pytest.mark.parametrize(
    ("tag", "overlay"),
    [
        ("resnet18.a1_in1k", {}),  # center, bicubic, crop_pct 0.95
        ("mobilenetv3_small_050.lamb_in1k", {}),  # center, bicubic, crop_pct 0.875
        ("resnet10t.c3_in1k", {"interpolation": "bilinear", "crop_pct": 0.8}),  # center, bilinear
        ("convnext_atto.d2_in1k", {"crop_mode": "squash", "crop_pct": 1.0}),  # as the 83 '..._384' convnext tags
        ("convnext_atto.d2_in1k", {"crop_mode": "squash", "crop_pct": 0.9, "interpolation": "bilinear"}),
        ("resnet18.a1_in1k", {"crop_mode": "border", "crop_pct": 1.0}),  # timm's third mode
    ],
    ids=["center-bicubic-095", "center-0875", "center-bilinear-08", "squash-1", "squash-09-bilinear", "border"],
)
def test_the_eval_transform_of_a_timm_tag_is_timms_own(tag: str, overlay: dict) -> None:
    """GloViTa's evaluation transform for a timm encoder equals timm's create_transform(resolve_data_config(...)) on
    the same image, for every crop mode timm's pretrained configs use."""
    import timm
    from timm.data import create_transform, resolve_data_config

    from glovita.augmentation.factory import build_transform
    from glovita.modalities.images import ImageAugmentation, resolve_augmentation
    from glovita.models.preprocessing import timm_preprocessing

    model = timm.create_model(tag, pretrained=False, num_classes=0, pretrained_cfg_overlay=overlay)
    resolved = resolve_augmentation(ImageAugmentation("default", "default"), timm_preprocessing(model), 3)
    ours = build_transform(resolved.test_policy, resolved.params, "data.augmentation.test_policy")
    theirs = create_transform(**resolve_data_config({}, model=model))
    for image in (_photo(300, 200), _photo(180, 260)):
        mine, reference = ours(image), theirs(image)
        assert mine.shape == reference.shape
        torch.testing.assert_close(mine, reference, rtol=0, atol=1e-5)  # the same PIL resize, crop and padding


def _old(*paths: Path) -> None:
    """Date files an hour back: the check remembers only files that settled (a rewrite in the same mtime tick
    would otherwise look unchanged)."""
    import os
    import time

    for path in paths:
        os.utime(path, (time.time() - 3600, time.time() - 3600))


def test_a_png_cut_short_after_its_header_is_found_before_training(tmp_path: Path, capsys) -> None:
    from glovita.cli.train import main
    from tests.conftest import generic_args, write_images

    root = tmp_path / "ds"
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        for label, name in enumerate("ab"):
            write_images(root / "images" / split / name, label, count, prefix=split)
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    victim = root / "images" / "test" / "b" / "cut.png"
    Image.fromarray(noisy).save(victim)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size * 2 // 3])
    with Image.open(victim) as image:
        assert image.size == (64, 64)  # the header still decodes: a header check passes it
    with pytest.raises(SystemExit):
        main(generic_args(root, tmp_path / "exp", 2, "--group", "g", "--training.epochs", "1"))
    err = " ".join(capsys.readouterr().err.split())
    assert f"test: '{victim}' is not a readable image (image file is truncated" in err
    assert not (tmp_path / "exp" / "generic_image_dataset" / "g" / "0" / "config.json").exists()


def test_unchanged_files_are_not_read_again_by_the_next_check(tmp_path: Path, monkeypatch) -> None:
    from glovita.datasets.checks import check_split_files
    from glovita.datasets.generic_image import GenericImageDataset
    from tests.conftest import write_images

    monkeypatch.setenv("GLOVITA_CACHE_DIR", str(tmp_path / "cache"))
    paths = write_images(tmp_path / "images", 0, 6)
    _old(*paths)
    dataset = GenericImageDataset([(p, 0) for p in paths], "RGB")
    decoded: list[Path] = []
    load = Image.Image.load

    def counted(image: Image.Image):  # every full decode of the check goes through Image.load
        if getattr(image, "filename", ""):
            decoded.append(Path(image.filename))
        return load(image)

    monkeypatch.setattr(Image.Image, "load", counted)
    assert check_split_files({"train": dataset}) == 6 and sorted(set(decoded)) == sorted(paths)
    decoded.clear()
    assert check_split_files({"train": dataset}) == 6 and decoded == []  # a second run pays nothing
    Image.new("RGB", (32, 32), (9, 9, 9)).save(paths[2])  # replaced: another size and mtime
    _old(paths[2])
    check_split_files({"train": dataset})
    assert set(decoded) == {paths[2]}


@pytest.fixture(scope="module")
def moving_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from glovita.cli.make_moving_digits import main

    root = tmp_path_factory.mktemp("videos") / "md"
    main(["--output_dir", str(root), "--num_videos", "12", "--num_frames", "6", "--frame_size", "16",
          "--digit_size", "8"])  # fmt: skip
    return root


def _video_splits(root: Path, **data: object):
    """The splits of the moving digits under `root` as glovita_train builds them (3 of the 12 training videos
    validate), with `data` fields on top."""
    from glovita.configs.root import RootConfig
    from glovita.datasets.factory import build_datasets

    fields = {"dataset": "generic_video_dataset", "data_root_dir": str(root), "num_classes": 4, "val_fraction": 0.25}
    cfg = RootConfig.model_validate(
        {"data": {**fields, **data}, "model": {"encoder": {"encoder_type": "framewise_image"}}}
    )
    splits = build_datasets(cfg.data, 3)
    return {"train": splits.train, "val": splits.val, "test": splits.test}


def test_a_damaged_or_too_short_test_video_is_found_before_training(
    moving_digits: Path, tmp_path: Path, capsys
) -> None:
    import json
    import shutil

    from glovita.cli.make_moving_digits import main as make_moving_digits
    from glovita.datasets.checks import check_split_files

    data = tmp_path / "md"
    shutil.copytree(moving_digits, data)
    damaged, short = (data / "videos" / name for name in json.loads((data / "splits.json").read_text())["test"][:2])
    body = damaged.read_bytes()
    start, end = body.find(b"mdat") + 8, body.find(b"moov") - 8
    damaged.write_bytes(body[:start] + b"\xff" * (end - start) + body[end:])  # the header (moov) is intact
    make_moving_digits(["--output_dir", str(tmp_path / "two"), "--num_videos", "8", "--num_frames", "2",
                        "--frame_size", "16", "--digit_size", "8"])  # fmt: skip
    shutil.copyfile(next((tmp_path / "two" / "videos").rglob("*.mp4")), short)
    with pytest.raises(ValueError) as refused:
        check_split_files(_video_splits(data, num_frames=4, short_videos="error"))
    message = str(refused.value)
    assert "2 of 12 files of the dataset cannot be used" in message
    assert f"test: Cannot decode '{damaged}' after frame" in message
    assert f"test: '{short}' has 2 frames, fewer than a clip spans (4)" in message
    damaged.write_bytes(body)
    capsys.readouterr()
    check_split_files(_video_splits(data, num_frames=4))  # short_videos pad: said, not silent
    out = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 video(s) have fewer frames than a clip spans (4) and are padded by repeating frames" in out
    assert f"'{short}' (2 frame(s))" in out


def test_folds_missing_from_the_split_file_are_named_before_fold_0_trains(tmp_path: Path) -> None:
    import json

    from glovita.cli.train import main
    from tests.conftest import FAST, write_images

    root = tmp_path / "ds"
    ids = [f"{p.parent.name}/{p.name}" for k in "ab" for p in write_images(root / "images" / k, "ab".index(k), 4)]
    (root / "splits.json").write_text(json.dumps({"train": ids[:6], "val": ids[6:], "test": ids[6:]}))
    with pytest.raises(SystemExit) as stopped:
        main(["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes", "2",
              "--experiments_dir", str(tmp_path / "exp"), *FAST, "--folds", "0", "1", "--group", "cv"])  # fmt: skip
    assert stopped.value.code != 0
    assert not list((tmp_path / "exp").rglob("config.json"))  # fold 0 did not train


def test_overlapping_frame_segments_are_refused_naming_both_lines(tmp_path: Path) -> None:
    from glovita.cli.make_moving_digits import main as make_moving_digits
    from glovita.datasets.generic_video import read_frame_labels

    root = tmp_path / "f"
    make_moving_digits(["--output_dir", str(root), "--framewise", "--num_videos", "5", "--num_frames", "12",
                        "--frame_size", "16", "--digit_size", "8", "--min_segment_frames", "3"])  # fmt: skip
    table = root / "frame_labels.csv"
    lines = table.read_text().splitlines()
    video, start, end, label = lines[1].split(",")
    lines.append(f"{video},{end},{int(end) + 1},{label}")  # ends-exclusive thinking: frame `end` in two segments
    table.write_text("\n".join(lines) + "\n")
    paths = sorted((root / "videos").rglob("*.mp4"))
    with pytest.raises(ValueError) as refused:
        read_frame_labels(table, root / "videos", paths, 4)
    assert f"'{table}' lines 2 and {len(lines)}: segments {start}..{end} and {end}..{int(end) + 1} of '{video}' " \
           "overlap (end_frame is inclusive" in str(refused.value)  # fmt: skip


def test_a_short_case_in_an_equal_length_ts_file_is_refused(tmp_path: Path) -> None:
    from glovita.datasets.timeseries import read_ts_file

    path = tmp_path / "eq.ts"
    path.write_text("@problemName eq\n@seriesLength 5\n@equalLength true\n@classLabel true a b\n@data\n"
                    "1,2,3,4,5:a\n1,2,3,4:b\n")  # fmt: skip
    with pytest.raises(ValueError, match=rf"'{path}' line 7 \(case 1\) has 4 time steps; the file says "
                                         r"@equalLength true \(@seriesLength 5\)"):  # fmt: skip
        read_ts_file(path, regression=False)
    path.write_text(path.read_text().replace("@equalLength true", "@equalLength false"))
    assert [len(s[0]) for s in read_ts_file(path, regression=False).series] == [5, 4]  # padded later, as asked


def test_a_one_hot_y_in_an_npz_is_refused_not_turned_into_strings(tmp_path: Path) -> None:
    from glovita.datasets.timeseries import read_npz_file

    path = tmp_path / "series.npz"
    np.savez(path, X=np.zeros((4, 2, 8)), y=np.eye(2)[[0, 1, 0, 1]])
    with pytest.raises(ValueError, match=r"y must hold one label per case, shape \(N,\); it is \(4, 2\) \(one-hot\? "
                                         r"store the class indices: y = y.argmax\(1\)\)"):  # fmt: skip
        read_npz_file(path, regression=False)


def test_a_mistyped_first_row_of_one_csv_series_is_not_taken_for_a_header(tmp_path: Path) -> None:
    from glovita.datasets.timeseries import read_csv_folder

    folder = tmp_path / "series"
    folder.mkdir()
    for index in range(4):
        (folder / f"s{index}.csv").write_text("".join(f"{t},{t * 2}\n" for t in range(6)))
    (folder / "s2.csv").write_text("0,O.5\n" + "".join(f"{t},{t * 2}\n" for t in range(1, 6)))  # letter O
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"s{i},{i % 2}\n" for i in range(4)))
    with pytest.raises(ValueError, match=r"s2.csv' line 1: not a row of numbers"):
        read_csv_folder(folder, labels, regression=False)
    (folder / "s2.csv").write_text("a,b\n" + "".join(f"{t},{t * 2}\n" for t in range(6)))  # a header in one file
    with pytest.raises(ValueError, match=r"s2.csv' has the header row 'a,b'; 3 of the 4 series files in its folder "
                                         r"have no header row"):  # fmt: skip
        read_csv_folder(folder, labels, regression=False)
    for index in range(4):  # headers in every file: read as before
        (folder / f"s{index}.csv").write_text("x,y\n" + "".join(f"{t},{t * 2}\n" for t in range(6)))
    assert all(s.shape == (2, 6) for s in read_csv_folder(folder, labels, regression=False).series)
