"""Video clip policies (torchvision v2 on tv_tensors.Video (T, C, H, W)): every random parameter is drawn once
per clip, so all frames of a clip get the same crop, flip and colour change. Each policy maps a uint8 clip to a
normalised float clip; temporal jitter is the clip sampler's part (VideoPolicy.stride_jitter)."""

from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from glovita.augmentation.preprocessing import Preprocessing


@dataclass(frozen=True)
class VideoPolicy:
    """The spatial transform of a policy and how much it jitters the frame stride (0: not at all)."""

    spatial: v2.Transform
    stride_jitter: float = 0.0


def _interpolation(params: Preprocessing) -> InterpolationMode:
    # bicubic is not implemented for uint8 video tensors everywhere; bilinear is what video models train with
    return InterpolationMode.NEAREST if params.interpolation == "nearest" else InterpolationMode.BILINEAR


def _finish(params: Preprocessing) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(params.mean), std=list(params.std))]


def default_video_eval(params: Preprocessing) -> VideoPolicy:
    """Resize the shorter side to resize_size, centre-crop image_size, normalise (deterministic)."""
    return VideoPolicy(
        v2.Compose(
            [
                v2.Resize(params.resize_size, interpolation=_interpolation(params), antialias=True),
                v2.CenterCrop(params.image_size),
                *_finish(params),
            ]
        )
    )


def _crop(params: Preprocessing) -> v2.Transform:
    return v2.RandomResizedCrop(params.image_size, scale=(0.5, 1.0), interpolation=_interpolation(params))


def _colour(params: Preprocessing) -> list[v2.Transform]:
    if len(params.mean) == 3:
        return [v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)]
    if len(params.mean) == 1:
        return [v2.ColorJitter(brightness=0.3, contrast=0.3)]
    return []


def default_video(params: Preprocessing) -> VideoPolicy:
    """Random resized crop (scale 0.5-1), the same for every frame."""
    return VideoPolicy(v2.Compose([_crop(params), *_finish(params)]))


def default_video_1(params: Preprocessing) -> VideoPolicy:
    """default_video + colour jitter (brightness, contrast, saturation, hue), the same for every frame."""
    return VideoPolicy(v2.Compose([_crop(params), *_colour(params), *_finish(params)]))


def default_video_2(params: Preprocessing) -> VideoPolicy:
    """default_video_1 + horizontal flips: only for labels that survive mirroring (not left/right motion)."""
    return VideoPolicy(v2.Compose([_crop(params), v2.RandomHorizontalFlip(), *_colour(params), *_finish(params)]))


def default_video_3(params: Preprocessing) -> VideoPolicy:
    """default_video_2 + temporal jitter: the frame stride of each clip scaled by a random 0.5-1.5."""
    return VideoPolicy(default_video_2(params).spatial, stride_jitter=0.5)


def none(params: Preprocessing) -> VideoPolicy:
    """No augmentation: training clips get the evaluation transform."""
    return default_video_eval(params)


POLICIES = {
    "none": none,
    "default_video": default_video,
    "default_video_1": default_video_1,
    "default_video_2": default_video_2,
    "default_video_3": default_video_3,
}
"""Training policies; evaluation always uses default_video_eval (test_policy default_video)."""


def as_video(frames: torch.Tensor) -> tv_tensors.Video:
    """uint8 frames (T, H, W, C) as a tv_tensors.Video (T, C, H, W)."""
    return tv_tensors.Video(frames.permute(0, 3, 1, 2))
