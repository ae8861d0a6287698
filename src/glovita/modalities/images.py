"""2D images: PIL images -> 2D policy transforms (torchvision v2), seeded per sample, channels-last batches."""

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Sampler

from glovita.augmentation.factory import build_policy_transforms
from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline, collate_samples
from glovita.models.preprocessing import adapt_statistics
from glovita.reports.tiles import as_picture
from glovita.runtime.batch import INPUT, LABEL_MAP, TARGET_IMAGE, Batch, Sample, covering_fields
from glovita.runtime.loaders import EpochPlan, SeededSampler


@dataclass(frozen=True)
class ImageAugmentation:
    """The data.augmentation settings of a 2D dataset; unset sizes and statistics come from the encoder."""

    train_policy: str
    test_policy: str
    image_size: int | None = None
    resize_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None


@dataclass(frozen=True)
class ResolvedAugmentation:
    """The 2D policies with every size and statistic decided (resolved_config.json `augmentation`)."""

    train_policy: str
    test_policy: str
    image_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    patch_size: int | None
    crop_mode: str
    """timm's crop mode of the evaluation resize (center, squash, border; Preprocessing.crop_mode)."""

    @property
    def params(self) -> Preprocessing:
        """What the policy implementations need."""
        return Preprocessing(
            self.image_size, self.resize_size, self.mean, self.std, self.interpolation, crop_mode=self.crop_mode
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ResolvedAugmentation":
        """Read back from resolved_config.json."""
        return cls(
            train_policy=str(record["train_policy"]),
            test_policy=str(record["test_policy"]),
            image_size=int(record["image_size"]),
            resize_size=int(record["resize_size"]),
            mean=tuple(float(v) for v in record["mean"]),
            std=tuple(float(v) for v in record["std"]),
            interpolation=str(record["interpolation"]),
            patch_size=record.get("patch_size"),
            crop_mode=str(record.get("crop_mode", "center")),  # runs written before crop modes were read: center
        )


def resolve_augmentation(
    request: ImageAugmentation, defaults: Preprocessing, input_channels: int
) -> ResolvedAugmentation:
    """Explicit values (dataset defaults or user overrides) win; the encoder's pretrained config fills the rest."""
    image_size = request.image_size or defaults.image_size
    if request.resize_size is not None:
        resize_size = request.resize_size
    elif request.image_size is not None:
        resize_size = round(image_size * defaults.resize_size / defaults.image_size)
    else:
        resize_size = defaults.resize_size
    mean = request.mean or adapt_statistics(defaults.mean, input_channels, fill=0.5)
    std = request.std or adapt_statistics(defaults.std, input_channels, fill=0.5)
    if len(mean) != input_channels:
        raise ValueError(
            f"data.augmentation.mean/std have {len(mean)} values but model.encoder.input_channels={input_channels}. "
            "Give one value per channel."
        )
    return ResolvedAugmentation(
        train_policy=request.train_policy,
        test_policy=request.test_policy,
        image_size=image_size,
        resize_size=max(resize_size, image_size),
        mean=tuple(mean),
        std=tuple(std),
        interpolation=request.interpolation or defaults.interpolation,
        patch_size=defaults.patch_size,
        crop_mode=defaults.crop_mode,
    )


class JointImageTransform:
    """A 2D policy applied to a whole sample in one torchvision v2 call: the image and its label map (as
    tv_tensors.Mask: geometric ops move it with nearest interpolation, photometric ops and normalisation leave it
    alone) draw the same random parameters; a target image (label-free tasks) moves like the image, untouched by
    colour changes and normalisation. A sample without either takes exactly the image-only path."""

    def __init__(self, transform: Any, policy: str) -> None:
        self.transform = transform
        self.policy = policy
        """The policy's setting, for messages (data.augmentation.train_policy='...')."""

    def __call__(self, sample: Sample) -> Sample:
        covering = covering_fields(sample)
        if not covering:
            return {**sample, INPUT: self.transform(sample[INPUT])}
        if covering == [TARGET_IMAGE]:  # label-free: the target moves with the image; colour changes are the input's
            from glovita.augmentation.target_image import TargetImage

            image, moved = self.transform(sample[INPUT], TargetImage(sample[TARGET_IMAGE]))
            return {**sample, INPUT: image, TARGET_IMAGE: moved.as_subclass(torch.Tensor)}
        if covering != [LABEL_MAP]:
            raise ValueError(f"2D image transforms move a {LABEL_MAP} with the image; {covering} is not supported yet.")
        from torchvision import tv_tensors

        label_map = torch.from_numpy(np.array(sample[LABEL_MAP], dtype=np.int64))
        try:
            image, moved = self.transform(sample[INPUT], tv_tensors.Mask(label_map))
        except TypeError as err:  # e.g. torchvision's RandAugment refuses masks
            raise ValueError(
                f"{self.policy} cannot move a {LABEL_MAP} with the image ({err}). Choose a geometric policy such as "
                "default_2d_1 ... default_2d_5."
            ) from err
        return {**sample, INPUT: image, LABEL_MAP: moved.as_subclass(torch.Tensor)}


RESIZE_AND_CROP_POLICIES = ("default", "shared_default_2d")
"""Evaluation policies glovita_infer undoes to write masks at each image's size: resize the shorter side (both
sides, for timm's crop mode "squash") to resize_size, centre-crop image_size (then normalise)."""


def to_stored_size(
    scores: torch.Tensor, size: tuple[int, int], resize_size: int, image_size: int, outside: int, squash: bool = False
) -> np.ndarray:
    """The label map (H, W) of an image of `size` from its class scores (K, image_size, image_size) after
    torchvision's Resize(resize_size) (shorter side; both sides when `squash`) + CenterCrop(image_size): the scores
    are put back where the crop took them from and resized bilinearly to the image; pixels the crop left out are
    `outside`."""
    height, width = size
    short, long = min(height, width), max(height, width)
    new_long = int(resize_size * long / short)  # torchvision's rule for Resize(int)
    resized = (resize_size, new_long) if height <= width else (new_long, resize_size)
    if squash:  # timm's crop mode "squash": both sides were resized to resize_size
        resized = (resize_size, resize_size)
    top, left = (int(round((r - image_size) / 2.0)) for r in resized)
    canvas = torch.zeros((scores.shape[0], *resized), dtype=torch.float32)
    covered = torch.zeros((1, 1, *resized), dtype=torch.float32)
    canvas[:, top : top + image_size, left : left + image_size] = scores.float()
    covered[..., top : top + image_size, left : left + image_size] = 1.0
    stored = F.interpolate(canvas[None], size=size, mode="bilinear", align_corners=False)[0]
    inside = F.interpolate(covered, size=size, mode="nearest")[0, 0] > 0
    return np.where(inside.numpy(), stored.argmax(dim=0).numpy(), outside).astype(np.uint8)


def displayable(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo normalisation; (H, W) for one channel, (H, W, 3) otherwise (alpha dropped)."""
    values = image.float() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    array = values.clamp(0, 1).numpy()
    return array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)


class ImageModality:
    """(PIL image, target) samples; batches (B, C, H, W)."""

    name = "images"
    spatial_dims: int | None = 2
    flips = True
    sample_noun = "images"
    bags = False

    def __init__(self, augmentation: ImageAugmentation) -> None:
        self.augmentation = augmentation

    def with_train_policy(self, policy: str) -> "ImageModality":
        """The same images under another training policy (e.g. the strong view of a semi-supervised step)."""
        return ImageModality(replace(self.augmentation, train_policy=policy))

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The 2D policies at the encoder's preprocessing (or as a run recorded them in `record`)."""
        if record:
            resolved = ResolvedAugmentation.from_record(record)
        else:
            if preprocessing is None:
                raise ValueError(
                    "2D images take their size and statistics from a 2D encoder; model.encoder is not one. "
                    "Choose a 2D encoder (timm, torchvision, transformer, dinov2, dinov3, residual_encoder 2D)."
                )
            resolved = resolve_augmentation(self.augmentation, preprocessing, input_channels)
        train, evaluation = build_policy_transforms(resolved.train_policy, resolved.test_policy, resolved.params)

        def display(view: torch.Tensor) -> np.ndarray:
            return displayable(view, resolved.mean, resolved.std)

        used = asdict(preprocessing) if preprocessing is not None else {}
        return Pipeline(
            train,
            evaluation,
            resolved,
            display=display,
            display_labels=lambda labels: labels.long().numpy(),
            display_map=lambda values: values.float().numpy(),
            display_values=as_picture,
            size_text=f"{resolved.image_size}x{resolved.image_size}",
            size_tag=str(resolved.image_size),
            encoder_preprocessing=used,
            normalization=(resolved.mean, resolved.std),
            sample_train=JointImageTransform(train, f"data.augmentation.train_policy={resolved.train_policy!r}"),
            sample_eval=JointImageTransform(evaluation, f"data.augmentation.test_policy={resolved.test_policy!r}"),
            kind="images",
        )

    def stored_label_map(self, scores: torch.Tensor, source: Path, outside: int, record: dict[str, Any]) -> np.ndarray:
        """The label map (H, W) of the image file `source` from its class scores (K, h, w): the run's evaluation
        resize and centre crop undone (to_stored_size)."""
        policy = record.get("test_policy")
        if policy not in RESIZE_AND_CROP_POLICIES:
            raise ValueError(
                f"glovita_infer writes each mask at its image's size by undoing the run's evaluation transform, and "
                f"data.augmentation.test_policy={policy!r} is not one it can undo "
                f"({', '.join(RESIZE_AND_CROP_POLICIES)}). Train with --data.augmentation.test_policy default."
            )
        crop_mode = str(record.get("crop_mode", "center"))
        if crop_mode not in ("center", "squash"):
            raise ValueError(
                f"glovita_infer writes each mask at its image's size by undoing the evaluation resize and crop; this "
                f"run's encoder evaluates with timm's crop mode {crop_mode!r} (padded borders), which it cannot undo. "
                "Choose an encoder tag whose pretrained config crops 'center' or 'squash'."
            )
        with Image.open(source) as image:
            size = (image.size[1], image.size[0])
        if size == tuple(scores.shape[-2:]):
            return scores.argmax(dim=0).to(torch.uint8).numpy()
        resize, crop = int(record["resize_size"]), int(record["image_size"])
        return to_stored_size(scores, size, resize, crop, outside, squash=crop_mode == "squash")

    def save_label_map(self, path: Path, labels: np.ndarray, source: Path) -> Path:
        """`labels` as an 8-bit PNG of class indices (path + .png), written atomically."""
        from glovita.runtime.io import atomic_path

        written = path.with_name(path.name + ".png")
        with atomic_path(written) as tmp:
            Image.fromarray(labels.astype(np.uint8), mode="L").save(tmp, format="PNG")
        return written

    def save_predicted_image(
        self, path: Path, values: torch.Tensor, source: Path, value_range: tuple[float, float]
    ) -> Path:
        """A predicted image (C, H, W) of [0, 1] values at the model's size, clipped and stored as an 8-bit PNG
        (path + .png, x 255 rounded: `rescale`), written atomically; target images are read to [0, 1] from their
        own bit depth, so `value_range` is (0, 1)."""
        from glovita.runtime.io import atomic_path

        picture = (as_picture(values) * 255).round().astype(np.uint8)
        written = path.with_name(path.name + ".png")
        with atomic_path(written) as tmp:
            Image.fromarray(np.ascontiguousarray(picture)).save(tmp, format="PNG")
        return written

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)  # each sample's augmentation draws from its own seed

    def collate(self, samples: Any) -> Batch:
        return collate_samples(samples)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return torch.channels_last if channels_last else None
