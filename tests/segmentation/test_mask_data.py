"""Label maps as data: read as stored indices (L, P, 16-bit), 255 -> 1 only for binary runs, bad masks refused
before training naming the file, and training transforms moving image and mask together."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glovita.configs.augmentation import ImageAugmentationConfig
from glovita.configs.data import GenericImageDatasetConfig
from glovita.datasets.checks import check_split_files
from glovita.datasets.factory import build_datasets
from glovita.datasets.label_maps import MaskReading, load_mask
from glovita.runtime.batch import INPUT, LABEL_MAP, TARGETS
from tests.segmentation.data import save_mask, segmentation_set

MULTI = MaskReading([], num_classes=3, ignore_index=255, binary=False)
BINARY = MaskReading([], num_classes=2, ignore_index=255, binary=True)


def test_masks_are_read_as_stored_indices(tmp_path: Path) -> None:
    values = np.array([[0, 1, 2], [255, 2, 0]])
    for mode in ("L", "P", "I;16"):
        got = load_mask(save_mask(tmp_path / f"{mode.replace(';', '')}.png", values, mode), MULTI)
        assert got.dtype == np.int64 and np.array_equal(got, values), mode
    binary = save_mask(tmp_path / "binary.png", np.array([[0, 255], [255, 0]]))
    assert np.array_equal(load_mask(binary, BINARY), [[0, 1], [1, 0]])
    assert np.array_equal(load_mask(binary, MULTI), [[0, 255], [255, 0]])  # multiclass: 255 stays ignored


def test_bad_masks_are_refused_naming_the_file(tmp_path: Path) -> None:
    rgb = save_mask(tmp_path / "rgb.png", np.zeros((2, 2, 3)), "RGB")
    with pytest.raises(ValueError, match=r"rgb.png' is a RGB image; label maps are single-channel"):
        load_mask(rgb, MULTI)
    outside = save_mask(tmp_path / "outside.png", np.array([[0, 3], [7, 255]]))
    with pytest.raises(ValueError, match=r"outside.png' has values 3, 7 outside the classes \(classes are 0..2"):
        load_mask(outside, MULTI)
    with pytest.raises(ValueError, match="binary masks hold 0 and 1"):
        load_mask(save_mask(tmp_path / "three.png", np.array([[0, 2]])), BINARY)


def _config(root: Path, **changes: object) -> GenericImageDatasetConfig:
    augmentation = ImageAugmentationConfig(train_policy="default_2d_2", test_policy="default", image_size=24,
                                           resize_size=24, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # fmt: skip
    fields = {"data_root_dir": root, "num_classes": 3, "task": "Segmentation", "masks_dir": Path("masks"),
              "augmentation": augmentation, **changes}  # fmt: skip
    return GenericImageDatasetConfig.model_validate(fields)


def test_a_dataset_with_masks_gives_each_image_its_label_map(tmp_path: Path) -> None:
    root = segmentation_set(tmp_path / "set")
    splits = build_datasets(_config(root), 3)
    sample = splits.train[0]
    stored = np.asarray(Image.open(root / "masks" / "00.png"))
    assert np.array_equal(sample[LABEL_MAP], stored) and sample[TARGETS] == 0
    assert splits.class_names == ["0", "1", "2"]
    assert check_split_files({"train": splits.train, "val": splits.val, "test": splits.test}) == 10


def test_a_wrong_size_or_missing_mask_is_named_before_training(tmp_path: Path) -> None:
    root = segmentation_set(tmp_path / "set")
    save_mask(root / "masks" / "03.png", np.zeros((20, 24)))
    (root / "masks" / "08.png").unlink()
    splits = build_datasets(_config(root), 3)
    with pytest.raises(ValueError) as caught:
        check_split_files({"train": splits.train, "val": splits.val, "test": splits.test})
    message = str(caught.value)
    assert "2 of 10 files" in message
    assert "03.png' is 24x20 but its image" in message and "Make the mask the image's size" in message
    assert "08.png' does not exist" in message and message.count("\n") == 0


def test_config_rules_name_the_flags() -> None:
    with pytest.raises(ValueError, match=r"data.task='Segmentation' needs label maps.*--data.masks_dir masks"):
        GenericImageDatasetConfig(data_root_dir=Path("x"), num_classes=2, task="Segmentation")
    with pytest.raises(ValueError, match="data.ignore_index=1 is a class index"):
        GenericImageDatasetConfig(data_root_dir=Path("x"), num_classes=2, task="Segmentation", masks_dir=Path("m"),
                                  ignore_index=1)  # fmt: skip
    with pytest.raises(ValueError, match="needs label maps"):
        from glovita.configs.data import DigitsConfig

        DigitsConfig(task="Segmentation")


def test_training_transforms_move_image_and_mask_together(tmp_path: Path) -> None:
    """default_2d_2 crops, flips, rotates and changes brightness: the bright square and its mask stay aligned, and
    the mask keeps its labels (nearest interpolation: no value between classes appears)."""
    from glovita.augmentation.preprocessing import Preprocessing
    from glovita.modalities.images import ImageAugmentation, ImageModality

    root = segmentation_set(tmp_path / "set")
    cfg = _config(root)
    splits = build_datasets(cfg, 3)
    modality = ImageModality(ImageAugmentation(**cfg.augmentation.model_dump()))
    pipeline = modality.pipeline(Preprocessing(24, 24, (0.0,) * 3, (1.0,) * 3, "bilinear", None), 3)
    agreement = []
    for index in range(6):
        original = splits.train[index]
        for seed in range(5):
            torch.manual_seed(seed)
            moved = pipeline.sample_train(original)
            image, mask = moved[INPUT], moved[LABEL_MAP]
            assert mask.shape == image.shape[-2:] and mask.dtype == torch.int64
            assert set(mask.unique().tolist()) <= set(np.unique(original[LABEL_MAP]).tolist())
            agreement.append(float(((image.mean(0) > 0.5) == (mask > 0)).float().mean()))
    # Bilinear image edges differ from nearest mask edges on a pixel ring (about 8 % of a 12x12 square at 24x24); a
    # mask left behind by a flip or crop disagrees on a quarter of the image or more.
    assert min(agreement) > 0.9 and sum(agreement) / len(agreement) > 0.96, agreement


def _coco(root: Path, **changes: object) -> dict:
    """A COCO instances file for segmentation_set's images: each square a polygon of category 7 ("square"), and on
    the first image a 2x2 crowd region as uncompressed RLE."""
    images, annotations = [], []
    for index, name in enumerate(sorted(p.name for p in (root / "images").iterdir())):
        mask = np.asarray(Image.open(root / "masks" / (Path(name).stem + ".png")))
        rows, cols = np.nonzero(mask)
        top, left, bottom, right = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
        images.append({"id": 100 + index, "file_name": name, "height": 24, "width": 24})
        polygon = [float(v) for v in (left, top, right, top, right, bottom, left, bottom)]
        annotations.append({"id": index, "image_id": 100 + index, "category_id": 7, "segmentation": [polygon],
                            "area": float((bottom - top) * (right - left)), "iscrowd": 0})  # fmt: skip
    crowd = np.zeros((24, 24), np.uint8, order="F")
    crowd[0:2, 0:2] = 1
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(crowd)
    annotations.append({"id": 99, "image_id": 100, "category_id": 7, "iscrowd": 1, "area": 4.0,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})  # fmt: skip
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "square"}], **changes}
    (root / "coco.json").write_text(json.dumps(coco))
    return coco


def test_coco_segments_give_the_label_maps(tmp_path: Path) -> None:
    root = segmentation_set(tmp_path / "set")
    _coco(root)
    cfg = _config(root, num_classes=2, masks_dir=None, coco_file=Path("coco.json"))
    splits = build_datasets(cfg, 3)
    assert splits.class_names == ["background", "square"]
    first = splits.train[0]  # 00.jpg: its square, and the crowd corner ignored
    stored = np.asarray(Image.open(root / "masks" / "00.png"))
    expected = (stored > 0).astype(np.int64)
    expected[0:2, 0:2] = 255
    assert np.array_equal(first[LABEL_MAP], expected)
    assert check_split_files({"train": splits.train, "val": splits.val, "test": splits.test}) == 10
    with pytest.raises(ValueError, match="has 1 categories \\(square\\) plus the background. Set --data.num_classes 2"):
        build_datasets(_config(root, num_classes=3, masks_dir=None, coco_file=Path("coco.json")), 3)


def test_coco_errors_name_the_annotation_or_the_image(tmp_path: Path) -> None:
    root = segmentation_set(tmp_path / "set")
    coco = _coco(root)
    cfg = _config(root, num_classes=2, masks_dir=None, coco_file=Path("coco.json"))
    (root / "coco.json").write_text(json.dumps({**coco, "annotations": [{**coco["annotations"][0], "image_id": 5}]}))
    with pytest.raises(ValueError, match="annotation 0 names image id 5, which its images list lacks"):
        build_datasets(cfg, 3)
    (root / "coco.json").write_text(json.dumps(coco))
    (root / "images" / "03.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"names 1 image\(s\) that do not exist .* \(e.g. 03.png\)"):
        build_datasets(cfg, 3)


def test_rgb_masks_are_read_by_a_colour_table_and_unknown_colours_named(tmp_path: Path) -> None:
    table = tmp_path / "colors.json"
    table.write_text(json.dumps({"#000000": 0, "#ff0000": 1, "#00FF00": 2}))
    from glovita.datasets.label_maps import load_mask_colors

    reading = MaskReading([], 3, 255, False, load_mask_colors(table))
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 1] = (255, 0, 0)
    pixels[1, 2] = (0, 255, 0)
    assert np.array_equal(load_mask(save_mask(tmp_path / "rgb.png", pixels, "RGB"), reading), [[0, 1, 0], [0, 0, 2]])
    pixels[1, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match="has colours #010203 that data.mask_colors_file does not list"):
        load_mask(save_mask(tmp_path / "odd.png", pixels, "RGB"), reading)


def test_a_csv_column_can_name_each_mask(tmp_path: Path) -> None:
    root = segmentation_set(tmp_path / "set")
    (root / "masks").rename(root / "labelmaps")
    names = sorted(p.name for p in (root / "images").iterdir())
    rows = [f"{name},seg_{Path(name).stem}.png" for name in names]
    for name in names:
        (root / "labelmaps" / f"{Path(name).stem}.png").rename(root / "labelmaps" / f"seg_{Path(name).stem}.png")
    (root / "labels.csv").write_text("image,mask\n" + "\n".join(rows) + "\n")
    cfg = _config(root, masks_dir=Path("labelmaps"), label_source="csv", csv_mask_column="mask")
    splits = build_datasets(cfg, 3)
    stored = np.asarray(Image.open(root / "labelmaps" / "seg_00.png"))
    assert np.array_equal(splits.train[0][LABEL_MAP], stored)
