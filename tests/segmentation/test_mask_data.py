"""Label maps as data: read as stored indices (L, P, 16-bit), 255 -> 1 only for binary runs, bad masks refused
before training naming the file, and training transforms moving image and mask together."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glovita.configs.augmentation import AugmentationConfig
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
    augmentation = AugmentationConfig(train_policy="default_2d_2", test_policy="default", image_size=24,
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
    with pytest.raises(ValueError, match="data.masks_dir go together"):
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
