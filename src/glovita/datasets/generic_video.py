"""Generic video dataset: video files (or folders of frames) under one folder, split like the generic image
dataset, labelled per video (folders / JSON / CSV) or per frame (a CSV of segments or .npy arrays).

Samples are light: (VideoSample, target). Which frames are decoded is decided by the modality's clip sampler,
seeded per sample, so the dataset never decodes a frame it does not need."""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from glovita.datasets.generic_image import Target
from glovita.datasets.videos import VideoInfo, check_video, probe_video, read_frames
from glovita.runtime.batch import IGNORE_FRAME


@dataclass(frozen=True)
class VideoSample:
    """A video to sample clips from; frame_labels (num_frames,) class indices for framewise datasets."""

    info: VideoInfo
    frame_labels: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def path(self) -> Path:
        return self.info.path

    def frames(self, indices: Sequence[int], channels: int) -> torch.Tensor:
        """The frames at `indices` as uint8 (T, H, W, C), decoded from the file or read from its frame folder."""
        return read_frames(self.info, indices, channels)


class VideoDataset(Dataset):
    """(VideoSample, target) pairs; target is a class index, a float tensor of regression values, or (framewise)
    0 with the labels in the sample. Frame counts are read from the headers on first use (or given).

    `clip_frames` (the frames one clip spans; None for framewise datasets) and `short_videos` say what the check
    before training does with a shorter video: refuse it (`error`) or count it for a warning (`pad`)."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, Target]],
        frame_labels: dict[Path, np.ndarray] | None = None,
        infos: dict[Path, VideoInfo] | None = None,
        clip_frames: int | None = None,
        short_videos: str = "pad",
    ) -> None:
        self.samples = list(samples)
        self.frame_labels = frame_labels
        self.infos = dict(infos or {})
        self.clip_frames = clip_frames
        self.short_videos = short_videos

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[VideoSample, int | torch.Tensor]:
        path, target = self.samples[index]
        info = self.infos.get(path)
        if info is None:  # read once per process (each loader worker keeps its own)
            info = self.infos[path] = probe_video(path)
        labels = None if self.frame_labels is None else self.frame_labels[path]
        sample = VideoSample(info, labels)
        if isinstance(target, tuple):
            return sample, torch.tensor(target, dtype=torch.float32)
        return sample, target

    def check_file(self, path: Path) -> dict[str, int]:
        """The check before training (data.check_files): the video decoded whole; returns its frame count and size
        (remembered, so an unchanged file is not decoded again)."""
        info = check_video(path)
        return {"num_frames": info.num_frames, "height": info.height, "width": info.width}

    def restore_check(self, path: Path, record: dict[str, int]) -> None:
        """What the check found (now or in an earlier run): kept as the video's info; a video shorter than a clip
        is refused under `--data.short_videos error`."""
        frames, height, width = (int(record[key]) for key in ("num_frames", "height", "width"))
        info = self.infos[path] = VideoInfo(path, frames, height, width)
        if self.clip_frames is not None and info.num_frames < self.clip_frames and self.short_videos == "error":
            raise ValueError(
                f"'{path}' has {info.num_frames} frames, fewer than a clip spans ({self.clip_frames}). Remove it, "
                "lower --data.num_frames / --data.frame_stride, or pass --data.short_videos pad."
            )

    def check_notices(self) -> list[str]:
        """Videos shorter than a clip, which `--data.short_videos pad` fills by repeating frames."""
        if self.clip_frames is None or self.short_videos != "pad":
            return []
        short = sorted((info.num_frames, str(path)) for path, info in self.infos.items()
                       if info.num_frames < self.clip_frames)  # fmt: skip
        if not short:
            return []
        frames, first = short[0]
        return [
            f"{len(short)} video(s) have fewer frames than a clip spans ({self.clip_frames}) and are padded by "
            f"repeating frames (--data.short_videos pad), e.g. '{first}' ({frames} frame(s)). Pass "
            "--data.short_videos error to refuse them, or lower --data.num_frames."
        ]

    @property
    def targets(self) -> list[Target]:
        return [target for _, target in self.samples]


def _segments_csv(file: Path) -> dict[str, list[tuple[int, int, str]]]:
    with file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        needed = ["video", "start_frame", "end_frame", "label"]
        if [c for c in needed if c not in columns]:
            raise ValueError(
                f"data.frame_labels_file '{file}' needs the columns {', '.join(needed)}; it has {', '.join(columns)}."
            )
        segments: dict[str, list[tuple[int, int, str]]] = {}
        lines: dict[str, list[int]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                start, end = int(row["start_frame"]), int(row["end_frame"])
            except ValueError as err:
                raise ValueError(f"'{file}' line {line}: start_frame/end_frame must be frame numbers ({err}).") from err
            if start < 0 or end < start:
                raise ValueError(f"'{file}' line {line}: segment {start}..{end} is empty or negative.")
            segments.setdefault(row["video"], []).append((start, end, row["label"].strip()))
            lines.setdefault(row["video"], []).append(line)
    for video, rows in segments.items():
        order = sorted(range(len(rows)), key=lambda i: rows[i][:2])
        for before, after in zip(order, order[1:], strict=False):
            if rows[after][0] <= rows[before][1]:  # a frame in two segments: the later line would silently win
                raise ValueError(
                    f"'{file}' lines {lines[video][before]} and {lines[video][after]}: segments "
                    f"{rows[before][0]}..{rows[before][1]} and {rows[after][0]}..{rows[after][1]} of '{video}' overlap "
                    "(end_frame is inclusive: a segment that ends where the next starts ends one frame earlier)."
                )
    return segments


def _class_index(names: set[str], num_classes: int, source: str) -> tuple[dict[str, int], list[str]]:
    """Integers are class indices; anything else a name (sorted)."""
    if all(n.lstrip("-").isdigit() for n in names):
        bad = sorted(int(n) for n in names if not 0 <= int(n) < num_classes)
        if bad:
            raise ValueError(
                f"{source}: class indices {bad} are outside 0..{num_classes - 1} (data.num_classes="
                f"{num_classes}). Fix the labels or --data.num_classes."
            )
        return {n: int(n) for n in names}, [str(i) for i in range(num_classes)]
    ordered = sorted(names)
    if len(ordered) != num_classes:
        raise ValueError(
            f"data.num_classes={num_classes} but {source} has {len(ordered)} classes "
            f"({', '.join(ordered[:20])}). Set --data.num_classes {len(ordered)}."
        )
    return {n: i for i, n in enumerate(ordered)}, ordered


def read_frame_labels(
    file: Path, videos_root: Path, paths: list[Path], num_classes: int
) -> tuple[dict[Path, np.ndarray], list[str], dict[Path, VideoInfo]]:
    """Per-frame class indices of every listed video, the class names, and the videos' headers (read here: the
    labels must cover every frame)."""
    if not file.exists():
        raise FileNotFoundError(
            f"data.frame_labels_file '{file}' does not exist. Point it at the segments CSV or "
            "the folder of per-video .npy files."
        )
    infos = {path: probe_video(path) for path in paths}
    labels: dict[Path, np.ndarray] = {}
    if file.is_dir():
        for path in paths:
            video_id = path.relative_to(videos_root).with_suffix("")
            array_file = file / f"{video_id}.npy"
            if not array_file.is_file():
                raise FileNotFoundError(f"No frame labels for '{path}': '{array_file}' does not exist.")
            values = np.load(array_file, allow_pickle=False)
            if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
                raise ValueError(
                    f"'{array_file}' must hold one integer class per frame, shape (T,); got "
                    f"{values.dtype} {values.shape}."
                )
            labels[path] = values.astype(np.int64)
        names = [str(i) for i in range(num_classes)]
        for path, values in labels.items():
            bad = values[(values < 0) | (values >= num_classes)]
            if bad.size:
                raise ValueError(
                    f"Frame labels of '{path}' hold {int(bad[0])}, outside 0..{num_classes - 1} "
                    f"(data.num_classes={num_classes})."
                )
    else:
        segments = _segments_csv(file)
        listed: dict[str, Path] = {path.relative_to(videos_root).as_posix(): path for path in paths}
        missing = sorted(set(listed) - set(segments))
        if missing:
            raise ValueError(
                f"data.frame_labels_file '{file}' has no segments for {len(missing)} video(s), e.g. "
                f"{missing[:3]}. Its video column holds paths relative to '{videos_root}'."
            )
        index, names = _class_index({s[2] for rows in segments.values() for s in rows}, num_classes, f"'{file}'")
        for video_key, path in listed.items():
            values = np.full(infos[path].num_frames, IGNORE_FRAME, dtype=np.int64)
            for start, end, label in segments[video_key]:
                if end >= len(values):
                    raise ValueError(
                        f"'{file}': segment {start}..{end} of '{path}' ends past its last frame ({len(values) - 1})."
                    )
                values[start : end + 1] = index[label]
            unlabelled = np.flatnonzero(values == IGNORE_FRAME)
            if unlabelled.size:
                raise ValueError(
                    f"'{file}': frames {int(unlabelled[0])}..{int(unlabelled[-1])} of '{path}' "
                    f"({unlabelled.size} of {values.size}) are in no segment. Label every frame."
                )
            labels[path] = values
    for path, values in labels.items():
        if len(values) != infos[path].num_frames:
            raise ValueError(f"'{path}' has {infos[path].num_frames} frames but its frame labels {len(values)}.")
    return labels, names, infos
