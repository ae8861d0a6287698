"""Config schema: defaults, round trips, cross-field errors, every union member validates."""

import json

import pytest
from pydantic import ValidationError

from glovita.cli.argv import find_union_fields
from glovita.configs.data import GenericImageDatasetConfig
from glovita.configs.root import RootConfig


def test_default_config_round_trips_through_json() -> None:
    config = RootConfig()
    assert config.data.dataset == "digits"
    assert RootConfig.model_validate(json.loads(config.model_dump_json())) == config


def test_dataset_defaults_live_in_config() -> None:
    from glovita.configs.data import Cifar10Config, DigitsConfig

    assert Cifar10Config().augmentation.train_policy == "randaugment"
    assert Cifar10Config().augmentation.test_policy == "default"
    assert Cifar10Config().num_classes == 10
    assert DigitsConfig().augmentation.image_size == 32


def test_saved_config_reloads_into_the_right_class() -> None:
    config = RootConfig.model_validate(
        {"data": {"dataset": "generic_image_dataset", "data_root_dir": "x", "num_classes": 3}}
    )
    assert isinstance(config.data, GenericImageDatasetConfig)


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="epoch"):
        RootConfig.model_validate({"training": {"epoch": 3}})


def test_configs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        RootConfig().training.epochs = 3  # type: ignore[misc]


def test_bad_dataset_tag_lists_choices() -> None:
    with pytest.raises(ValidationError, match="cifar10"):
        RootConfig.model_validate({"data": {"dataset": "cifar11"}})


_ANNOTATED = {"dataset": "generic_image_dataset", "data_root_dir": "x", "num_classes": 2, "masks_dir": "masks"}
_SALIENCY = {"step_type": "saliency_guided"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"data": {"dataset": "digits", "task": "Regression", "subtask": "regression"}}, "head_type regression"),
        ({"model": {"head": {"head_type": "regression"}}}, "data.task='Classification'"),
        ({"data": {"dataset": "digits", "task": "Regression"}}, "data.subtask"),
        ({"data": {"dataset": "digits", "num_classes": 1}}, "at least 2 classes"),
        ({"training": {"resume": True}}, "--group"),
        ({"group": "a/b"}, "single folder name"),
        ({"optimizer": {"name": "adamw", "lr": 0.1, "min_lr": 1.0}}, "optimizer.min_lr"),
        ({"data": {"dataset": "digits", "augmentation": {"mean": [0.5], "std": [0.5, 0.5]}}}, "augmentation.mean"),
        ({"data": _ANNOTATED, "training": {"step": _SALIENCY, "precision": "16-mixed"}}, "double backward.*32"),
        ({"data": _ANNOTATED, "training": {"step": _SALIENCY, "compile": True}}, "without --training.compile"),
        ({"training": {"step": _SALIENCY}}, "pass --data.masks_dir masks"),
        ({"data": _ANNOTATED, "training": {"step": _SALIENCY}, "task": {"mixup_alpha": 0.2}}, "mixup_alpha"),
        ({"data": {**_ANNOTATED, "subtask": "multilabel"}}, "masks go with single-label classification"),
        (
            {
                "data": {
                    "dataset": "generic_volume_dataset",
                    "data_root_dir": "x",
                    "task": "Regression",
                    "subtask": "regression",
                    "num_classes": 1,
                    "masks_dir": "m",
                },
                "model": {
                    "encoder": {"encoder_type": "residual_encoder", "spatial_dims": 3},
                    "head": {"head_type": "regression"},
                },
            },
            "masks go with single-label classification",
        ),
        (
            {
                "model": {"input_mask": {"checkpoint_path": "s.pt"}, "encoder": {"encoder_type": "series_cnn"}},
                "data": {"dataset": "generic_timeseries_dataset", "aeon_dataset": "GunPoint", "num_classes": 2},
            },
            "model.input_mask masks 2D images",
        ),
    ],  # fmt: skip
)
def test_cross_field_errors_name_the_fields(payload: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RootConfig.model_validate(payload)


FEATURES = {"dataset": "precomputed_features", "num_classes": 2, "train_features_file": "a.h5",
            "val_features_file": "b.h5"}  # fmt: skip
PRECOMPUTED = {"encoder_type": "precomputed", "feature_dim": 8}
SERIES = {"dataset": "generic_timeseries_dataset", "aeon_dataset": "GunPoint", "num_classes": 2}
REGRESSION = {"dataset": "digits", "task": "Regression", "subtask": "regression", "num_classes": 1}
VOLUMES = {"dataset": "generic_volume_dataset", "data_root_dir": "x", "num_classes": 2}
RESIDUAL_3D = {"encoder_type": "residual_encoder", "spatial_dims": 3, "input_channels": 1}
VIDEOS = {"dataset": "generic_video_dataset", "data_root_dir": "x", "num_classes": 2}
SEGMENTATION = {
    "dataset": "generic_image_dataset", "data_root_dir": "x", "num_classes": 2, "task": "Segmentation",
    "masks_dir": "masks",
}  # fmt: skip
TV_SEGMENTATION = {"encoder_type": "torchvision_segmentation", "type": "lraspp_mobilenet_v3_large"}
COMPANIONS = {
    ("data", "generic_image_dataset"): {
        "data": {"dataset": "generic_image_dataset", "data_root_dir": "x", "num_classes": 2}
    },  # fmt: skip
    ("data", "precomputed_features"): {"data": FEATURES, "model": {"encoder": PRECOMPUTED}},
    ("model.encoder", "precomputed"): {"data": FEATURES, "model": {"encoder": PRECOMPUTED}},
    ("model.head", "regression"): {"data": REGRESSION, "model": {"head": {"head_type": "regression"}}},
    ("model.head", "abmil"): {"data": FEATURES, "model": {"encoder": PRECOMPUTED, "head": {"head_type": "abmil"}}},
    ("model.head", "clam"): {"data": FEATURES, "model": {"encoder": PRECOMPUTED, "head": {"head_type": "clam"}}},
    ("data", "generic_volume_dataset"): {"data": VOLUMES, "model": {"encoder": RESIDUAL_3D}},
    ("model.encoder", "primus"): {"data": VOLUMES, "model": {"encoder": {"encoder_type": "primus"}}},
    ("optimizer", "lbfgs"): {"data": FEATURES, "model": {"encoder": PRECOMPUTED}, "optimizer": {"name": "lbfgs"}},
    ("data", "generic_timeseries_dataset"): {"data": SERIES, "model": {"encoder": {"encoder_type": "series_cnn"}}},
    ("model.encoder", "series_cnn"): {"data": SERIES, "model": {"encoder": {"encoder_type": "series_cnn"}}},
    ("model.encoder", "patchtst"): {
        "data": SERIES,
        "model": {"encoder": {"encoder_type": "patchtst", "context_length": 150}},
    },
    **{
        ("model.encoder", family): {"data": VIDEOS, "model": {"encoder": {"encoder_type": family}}}
        for family in ("torchvision_video", "pytorchvideo", "framewise_image")
    },
    ("data", "generic_video_dataset"): {"data": VIDEOS, "model": {"encoder": {"encoder_type": "torchvision_video"}}},
    ("model.head", "unet"): {"data": SEGMENTATION, "model": {"head": {"head_type": "unet"}}},
    ("training.step", "saliency_guided"): {
        "data": {"dataset": "generic_image_dataset", "data_root_dir": "x", "num_classes": 2, "masks_dir": "masks"},
        "training": {"step": {"step_type": "saliency_guided"}},
    },
    ("model.head", "torchvision_segmentation"): {
        "data": SEGMENTATION,
        "model": {"encoder": TV_SEGMENTATION, "head": {"head_type": "torchvision_segmentation"}},
    },
    ("model.head", "framewise_decoder_1d"): {
        "data": {**VIDEOS, "subtask": "framewise", "frame_labels_file": "frames.csv"},
        "model": {"encoder": {"encoder_type": "framewise_image"}, "head": {"head_type": "framewise_decoder_1d"}},
    },
}
"""Members that only validate together with others (a dataset needs its files, a bag head its features)."""


def test_every_union_member_validates_with_its_tag() -> None:
    for union in find_union_fields(RootConfig):
        for tag in union.subcommands:
            head, *rest = union.path.split(".")
            member = {union.discriminator: tag}
            default = {head: {rest[0]: member}} if rest else {head: member}
            config = RootConfig.model_validate(COMPANIONS.get((union.path, tag), default))
            node = config
            for part in union.path.split("."):
                node = getattr(node, part)
            assert getattr(node, union.discriminator) == tag
