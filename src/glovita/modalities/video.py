"""Videos: VideoSample -> clips decoded with PyAV (or read from frame folders) and transformed by the video
policies, seeded per sample; batches (B, C, T, H, W), or (B, K, C, T, H, W) for K evaluation clips per video.

Framewise datasets (per-frame labels) yield (clip, frame targets): training windows of num_frames frames, whole
videos in evaluation; batches carry per-frame targets (B, T) and a mask (B, T) of real frames."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Sampler

from glovita.augmentation.policies.video import POLICIES, VideoPolicy, as_video, default_video_eval
from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline, collate_samples
from glovita.modalities.images import ImageAugmentation, ResolvedAugmentation, displayable, resolve_augmentation
from glovita.runtime.batch import IGNORE_FRAME, INPUT, TARGETS, Batch, Sample, covering_fields
from glovita.runtime.loaders import EpochPlan, SeededSampler


class VideoSample(Protocol):
    """What a video dataset's sample gives its modality: the frame count, the file (for messages), the frames at
    given indices, and per-frame classes for framewise datasets."""

    frame_labels: np.ndarray | None

    @property
    def num_frames(self) -> int: ...

    @property
    def path(self) -> Path: ...

    def frames(self, indices: Sequence[int], channels: int) -> torch.Tensor:
        """uint8 (T, H, W, C)."""
        ...


@dataclass(frozen=True)
class ClipSampling:
    """Which frames a clip takes (data.num_frames, frame_stride, clip_sampling, eval_clips, short_videos)."""

    num_frames: int
    frame_stride: int
    clip_sampling: str
    eval_clips: int
    short_videos: str

    @property
    def span(self) -> int:
        """Frames a consecutive clip covers."""
        return (self.num_frames - 1) * self.frame_stride + 1

    @property
    def frames_needed(self) -> int:
        """Frames a video needs to give a clip without padding: num_frames (uniform) or the span (consecutive)."""
        return self.num_frames if self.clip_sampling == "uniform" else self.span

    def _check_length(self, sample: VideoSample, needed: int) -> None:
        if sample.num_frames < needed and self.short_videos == "error":
            raise ValueError(
                f"'{sample.path}' has {sample.num_frames} frames, fewer than a clip spans ({needed}: "
                f"data.num_frames={self.num_frames}, frame_stride={self.frame_stride}). Remove it, lower them, or "
                "pass --data.short_videos pad."
            )

    def _spread(self, sample: VideoSample, offsets: list[float]) -> list[int]:
        """`uniform` sampling: the video cut into num_frames equal segments, one frame from each at `offsets`
        (fractions of its segment)."""
        self._check_length(sample, self.num_frames)
        count = sample.num_frames
        edges = np.linspace(0, count, self.num_frames + 1)
        return [min(count - 1, int(lo + u * max(hi - lo, 1))) for lo, hi, u in zip(edges, edges[1:], offsets,
                                                                                   strict=False)]  # fmt: skip

    def _consecutive(self, count: int, start: int, stride: float) -> list[int]:
        return [min(count - 1, start + round(i * stride)) for i in range(self.num_frames)]

    def train_indices(self, sample: VideoSample, stride_jitter: float) -> list[int]:
        """One random clip (draws from torch's default generator, seeded per sample by the loader)."""
        count = sample.num_frames
        if self.clip_sampling == "uniform":
            return self._spread(sample, torch.rand(self.num_frames).tolist())
        self._check_length(sample, self.span)
        stride = float(self.frame_stride)
        if stride_jitter:
            stride = max(1.0, stride * (1 - stride_jitter + 2 * stride_jitter * float(torch.rand(()))))
        span = round((self.num_frames - 1) * stride) + 1
        start = int(torch.randint(0, max(count - span, 0) + 1, ()))
        return self._consecutive(count, start, stride)

    def eval_indices(self, sample: VideoSample) -> list[list[int]]:
        """eval_clips deterministic clips: evenly spaced starts (random) or segment offsets (uniform)."""
        count, clips = sample.num_frames, self.eval_clips
        if self.clip_sampling == "uniform":
            return [self._spread(sample, [(k + 0.5) / clips] * self.num_frames) for k in range(clips)]
        self._check_length(sample, self.span)
        starts = np.linspace(0, max(count - self.span, 0), clips).round().astype(int)
        return [self._consecutive(count, int(start), self.frame_stride) for start in starts]

    def window(self, sample: VideoSample) -> list[int]:
        """Framewise training: num_frames consecutive frames (every frame_stride-th) from a random start."""
        count = sample.num_frames
        start = int(torch.randint(0, max(count - self.span, 0) + 1, ()))
        return list(range(start, min(count, start + self.span), self.frame_stride))

    def whole(self, sample: VideoSample) -> list[int]:
        """Framewise evaluation: every frame_stride-th frame of the whole video."""
        return list(range(0, sample.num_frames, self.frame_stride))


@dataclass(frozen=True)
class ResolvedVideoAugmentation(ResolvedAugmentation):
    """The frame preprocessing (as for images) and clip sampling a video run used (resolved_config.json
    `augmentation`)."""

    num_frames: int
    frame_stride: int
    clip_sampling: str
    eval_clips: int
    short_videos: str
    framewise: bool

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ResolvedVideoAugmentation":
        frames = asdict(ResolvedAugmentation.from_record(record))
        sampling = ("num_frames", "frame_stride", "clip_sampling", "eval_clips", "short_videos", "framewise")
        return cls(**frames, **{key: record[key] for key in sampling})

    @property
    def sampling(self) -> ClipSampling:
        return ClipSampling(self.num_frames, self.frame_stride, self.clip_sampling, self.eval_clips, self.short_videos)


def _clip(sample: VideoSample, indices: list[int], policy: VideoPolicy, channels: int) -> torch.Tensor:
    """Decoded frames -> transformed clip (C, T, H, W)."""
    return policy.spatial(as_video(sample.frames(indices, channels))).permute(1, 0, 2, 3).contiguous()


class ClipTransform:
    """VideoSample -> clip(s) for training (one random clip) or evaluation (eval_clips clips; framewise: the whole
    video with its frame targets)."""

    def __init__(
        self, sampling: ClipSampling, policy: VideoPolicy, channels: int, training: bool, framewise: bool
    ) -> None:
        self.sampling = sampling
        self.policy = policy
        self.channels = channels
        self.training = training
        self.framewise = framewise

    def __call__(self, sample: VideoSample) -> Any:
        if self.framewise:
            indices = self.sampling.window(sample) if self.training else self.sampling.whole(sample)
            assert sample.frame_labels is not None
            targets = torch.from_numpy(sample.frame_labels[indices])
            return _clip(sample, indices, self.policy, self.channels), targets
        if self.training:
            indices = self.sampling.train_indices(sample, self.policy.stride_jitter)
            return _clip(sample, indices, self.policy, self.channels)
        clips = [_clip(sample, i, self.policy, self.channels) for i in self.sampling.eval_indices(sample)]
        return clips[0] if len(clips) == 1 else torch.stack(clips)

    def on_sample(self, record: Sample) -> Sample:
        """The whole sample: its clip(s) as the input; framewise, the sampled frames' classes as its targets."""
        covering = covering_fields(record)
        if covering:
            raise ValueError(f"Video transforms move the frames alone; samples with {covering} are not supported yet.")
        if self.framewise:
            clip, targets = self(record[INPUT])
            return {**record, INPUT: clip, TARGETS: targets}
        return {**record, INPUT: self(record[INPUT])}


def frame_strip(view: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """A clip (C, T, H, W) (or the first of (K, C, T, H, W)) as one picture: its frames side by side."""
    if isinstance(view, tuple):
        view = view[0]
    if view.ndim == 5:
        view = view[0]
    frames = [displayable(view[:, t], mean, std) for t in range(view.shape[1])]
    return np.concatenate(frames, axis=1)


class VideoModality:
    """(VideoSample, target) samples; batches (B, C, T, H, W) clips."""

    name = "videos"
    spatial_dims: int | None = 2
    flips = True
    sample_noun = "videos"
    bags = False

    def __init__(self, augmentation: ImageAugmentation, sampling: ClipSampling, framewise: bool) -> None:
        self.augmentation = augmentation
        self.sampling = sampling
        self.framewise = framewise
        """Per-frame targets (framewise heads): batches carry targets (B, T) and a mask (B, T) of real frames."""

    def resolve(self, preprocessing: Preprocessing | None, input_channels: int) -> ResolvedVideoAugmentation:
        if preprocessing is None:
            raise ValueError(
                "Video frames take their size and statistics from a video encoder; model.encoder is not one. "
                "Choose --model.encoder.encoder_type torchvision_video, framewise_image or pytorchvideo."
            )
        frames = resolve_augmentation(self.augmentation, preprocessing, input_channels)
        return ResolvedVideoAugmentation(**asdict(frames), **asdict(self.sampling), framewise=self.framewise)

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The clip sampler and policies at the encoder's preprocessing (or as a run recorded them in `record`)."""
        resolved = (
            ResolvedVideoAugmentation.from_record(record) if record else self.resolve(preprocessing, input_channels)
        )
        if resolved.train_policy not in POLICIES:
            raise ValueError(
                f"data.augmentation.train_policy={resolved.train_policy!r} is not a video policy. "
                f"Choose one of {', '.join(POLICIES)}."
            )
        train_policy = POLICIES[resolved.train_policy](resolved.params)
        eval_policy = default_video_eval(resolved.params)
        sampling, channels = resolved.sampling, len(resolved.mean)

        def display(view: torch.Tensor) -> np.ndarray:
            return frame_strip(view, resolved.mean, resolved.std)

        used = asdict(preprocessing) if preprocessing is not None else {}
        size = f"{resolved.num_frames}x{resolved.image_size}x{resolved.image_size}"
        train = ClipTransform(sampling, train_policy, channels, training=True, framewise=resolved.framewise)
        evaluation = ClipTransform(sampling, eval_policy, channels, training=False, framewise=resolved.framewise)
        return Pipeline(
            train,
            evaluation,
            resolved,
            sample_train=train.on_sample,
            sample_eval=evaluation.on_sample,
            kind="videos",
            display=display,
            size_text=size,
            size_tag=size,
            encoder_preprocessing=used,
        )

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)  # each clip's frames and augmentation draw from its own seed

    def collate(self, samples: list[Sample]) -> Batch:
        if not self.framewise:
            return collate_samples(samples)
        clips = [sample[INPUT] for sample in samples]
        frame_targets = [sample[TARGETS] for sample in samples]
        longest = max(clip.shape[1] for clip in clips)
        inputs = clips[0].new_zeros((len(clips), clips[0].shape[0], longest, *clips[0].shape[2:]))
        padded = torch.full((len(clips), longest), IGNORE_FRAME, dtype=torch.long)
        mask = torch.zeros((len(clips), longest), dtype=torch.bool)
        for row, (clip, targets) in enumerate(zip(clips, frame_targets, strict=True)):
            inputs[row, :, : clip.shape[1]] = clip
            padded[row, : len(targets)] = targets
            mask[row, : len(targets)] = True
        return Batch(inputs, padded, mask)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None
