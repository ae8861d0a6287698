"""Train/test augmentation choice and the overrides a user may set."""

from typing import Annotated, Any, Literal, get_args

import tyro
from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig

Policy3dName = Literal[
    "default_3d", "default_3d_1", "default_3d_2", "default_3d_3", "default_3d_4", "default_nnunet", "default_nnunet_DA5"
]
"""Policies for volumes (shared_3d.py)."""
Policy2dName = Literal[
    "default",
    "shared_default_2d",
    "default_2d_1",
    "default_2d_2",
    "default_2d_3",
    "default_2d_4",
    "default_2d_5",
    "randaugment",
    "default_2d_randaugment",
    "digits",
]
"""Policies for 2D images (torchvision v2)."""
PolicyName = Literal[Policy2dName, Policy3dName]
"""Augmentation policies a user may choose; `augmentation/policies` implements each one."""

VideoPolicyName = Literal["none", "default_video", "default_video_1", "default_video_2", "default_video_3"]
"""Policies for video clips (augmentation/policies/video.py); `none` trains on the evaluation transform."""

POLICIES_3D: tuple[str, ...] = get_args(Policy3dName)
"""Policies for volumes (B, C, D, H, W); every other policy is for 2D images."""


class AugmentationConfig(GlovitaConfig):
    """Augmentation policies and preprocessing sizes; unset values come from the encoder's pretrained config."""

    train_policy: PolicyName = "default"
    """Policy applied to training images."""
    test_policy: PolicyName = "default"
    """Policy applied to validation and test images (deterministic)."""
    image_size: int | None = Field(None, gt=0)
    """Side of the square image fed to the encoder; unset uses the encoder's default."""
    resize_size: int | None = Field(None, gt=0)
    """Shorter side after resizing, before the centre crop to image_size; unset derives it from the encoder."""
    mean: tuple[float, ...] | None = None
    """Per-channel normalisation mean; unset uses the encoder's."""
    std: tuple[float, ...] | None = None
    """Per-channel normalisation std; unset uses the encoder's."""
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    """Resize interpolation; unset uses the encoder's."""

    @model_validator(mode="after")
    def _check(self) -> "AugmentationConfig":
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise ValueError(
                f"data.augmentation.mean has {len(self.mean)} values but data.augmentation.std has {len(self.std)}. "
                "Give one value per input channel to both."
            )
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"data.augmentation.std={self.std} must be positive. Fix --data.augmentation.std.")
        if self.image_size is not None and self.resize_size is not None and self.resize_size < self.image_size:
            raise ValueError(
                f"data.augmentation.resize_size={self.resize_size} is smaller than image_size={self.image_size}; "
                "the centre crop would not fit. Set resize_size >= image_size."
            )
        return self


def _choices(names: Any) -> Any:
    """The policies --help lists for a dataset's dimension (every policy still parses: a policy of the other
    dimension is refused with its reason by the root config)."""
    return tyro.conf.arg(metavar="{" + ",".join(get_args(names)) + "}")


class ImageAugmentationConfig(AugmentationConfig):
    """Augmentation of 2D images: policies and preprocessing sizes; unset values come from the encoder's pretrained
    config."""

    train_policy: Annotated[PolicyName, _choices(Policy2dName)] = "default"
    """Policy applied to training images."""
    test_policy: Annotated[PolicyName, _choices(Policy2dName)] = "default"
    """Policy applied to validation and test images (deterministic)."""


class VolumeAugmentationConfig(AugmentationConfig):
    """Augmentation of 3D volumes (batchgeneratorsv2 policies after nnU-Net's); volume datasets resample to
    data.volume_size, so the 2D size fields do not apply."""

    train_policy: Annotated[PolicyName, _choices(Policy3dName)] = "default_3d_2"
    """Policy applied to training volumes."""
    test_policy: Annotated[PolicyName, _choices(Policy3dName)] = "default_3d"
    """Policy applied to validation and test volumes (deterministic)."""


class VideoAugmentationConfig(GlovitaConfig):
    """Clip policies (one spatial transform for every frame of a clip) and frame preprocessing; unset sizes and
    statistics come from the encoder's pretrained config."""

    train_policy: VideoPolicyName = "default_video"
    """Policy applied to training clips: default_video random resized crop; _1 adds colour jitter; _2 adds
    horizontal flips (only for labels that survive mirroring); _3 adds temporal jitter (frame stride 0.5-1.5x)."""
    test_policy: Literal["default_video"] = "default_video"
    """Policy applied to validation, test and inference clips: resize the shorter side, centre crop, normalise."""
    image_size: int | None = Field(None, gt=0)
    """Side of the square frames fed to the encoder; unset uses the encoder's default."""
    resize_size: int | None = Field(None, gt=0)
    """Shorter frame side after resizing, before the centre crop; unset derives it from the encoder."""
    mean: tuple[float, ...] | None = None
    """Per-channel normalisation mean; unset uses the encoder's."""
    std: tuple[float, ...] | None = None
    """Per-channel normalisation std; unset uses the encoder's."""
    interpolation: Literal["bilinear", "nearest"] | None = None
    """Resize interpolation; unset uses the encoder's (bicubic is taken as bilinear on video tensors)."""
