"""Reading and writing video files with PyAV, and folders of frames; errors name the file and the frame.

A video is either a file PyAV decodes (.mp4, .avi, .mkv, .mov, .webm) or a folder of frame images read in name
order. Frames come back as uint8 tensors (T, H, W, C) in RGB (or L for one channel)."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def import_av() -> Any:
    """PyAV, or a clear error naming the extra that installs it."""
    try:
        import av
    except ImportError as err:
        raise ImportError(
            "Video files are decoded with PyAV, which is not installed. Install it with "
            "`pip install -e '.[video]'` (or `pip install av`)."
        ) from err
    return av


def is_video(path: Path) -> bool:
    """A video file (by suffix) or a folder of frame images."""
    return path.suffix.lower() in VIDEO_SUFFIXES or (path.is_dir() and bool(frame_files(path)))


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a frames folder, in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)


def write_video(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """Encode RGB frames (T, H, W, 3) uint8 as H.264 (yuv444p, near lossless) into `path` (written atomically)."""
    from glovita.runtime.io import atomic_path

    av = import_av()
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = "yuv444p"  # full-resolution colour: tiny frames keep their edges
            stream.options = {"crf": "10", "preset": "veryfast"}
            for array in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says: the frame count and frame size."""

    path: Path
    num_frames: int
    height: int
    width: int


def probe_video(path: Path) -> VideoInfo:
    """Open a video (file or frames folder) far enough to know its frame count and size."""
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise ValueError(f"Video folder '{path}' holds no frame images ({', '.join(FRAME_SUFFIXES)}).")
        from PIL import Image

        with Image.open(files[0]) as first:
            width, height = first.size
        return VideoInfo(path, len(files), height, width)
    if not path.exists():
        raise FileNotFoundError(f"Video file '{path}' does not exist. Fix the split/label files or restore it.")
    av = import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"'{path}' holds no video stream. Replace or remove the file.")
            stream = container.streams.video[0]
            count = int(stream.frames)
            if count <= 0:  # some containers do not store the count: decode to count
                count = sum(1 for _ in container.decode(stream))
            return VideoInfo(path, count, int(stream.codec_context.height), int(stream.codec_context.width))
    except av.error.FFmpegError as err:
        raise ValueError(f"Cannot read video file '{path}' ({err}). Replace or remove the file.") from err


def check_video(path: Path) -> VideoInfo:
    """A video read whole before training: every frame decoded (a frames folder: every image), so a damaged or
    cut-short file is named now, not in a loader worker after training; returns what it holds (the decoded frame
    count, which a damaged file's header may overstate)."""
    info = probe_video(path)
    if path.is_dir():
        _decode_folder(info, list(range(info.num_frames)), 3)
        return info
    av = import_av()
    decoded = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                decoded += 1
    except av.error.FFmpegError as err:
        raise ValueError(f"Cannot decode '{path}' after frame {decoded} ({err}). Replace or remove it.") from err
    if decoded < info.num_frames:
        raise ValueError(
            f"'{path}' ends after {decoded} of the {info.num_frames} frames its header lists (damaged or cut short). "
            "Replace or remove it."
        )
    return VideoInfo(path, decoded, info.height, info.width)


def read_frames(info: VideoInfo, indices: Sequence[int], channels: int = 3) -> torch.Tensor:
    """The frames at `indices` (in any order, repeats allowed) as uint8 (T, H, W, C); decoding stops after the
    last one needed. A file that ends early or fails to decode is named with the frame it failed at."""
    wanted = sorted(set(indices))
    if not wanted:
        raise ValueError(f"No frames asked of '{info.path}'.")
    if wanted[0] < 0 or wanted[-1] >= info.num_frames:
        raise IndexError(f"Frames {wanted[0]}..{wanted[-1]} asked of '{info.path}', which has {info.num_frames}.")
    decoded = _decode_folder(info, wanted, channels) if info.path.is_dir() else _decode_file(info, wanted, channels)
    return torch.from_numpy(np.stack([decoded[i] for i in indices]))


def _decode_folder(info: VideoInfo, wanted: list[int], channels: int) -> dict[int, np.ndarray]:
    from PIL import Image

    files = frame_files(info.path)
    mode = "L" if channels == 1 else "RGB"
    frames = {}
    for index in wanted:
        try:
            with Image.open(files[index]) as image:
                frames[index] = np.asarray(image.convert(mode)).reshape(image.size[1], image.size[0], channels)
        except (OSError, ValueError, IndexError) as err:
            raise ValueError(f"Cannot read frame {index} of '{info.path}' ('{files[index].name}': {err}).") from err
    return frames


def _decode_file(info: VideoInfo, wanted: list[int], channels: int) -> dict[int, np.ndarray]:
    av = import_av()
    frames: dict[int, np.ndarray] = {}
    position = 0
    keep = set(wanted)
    fmt = "gray" if channels == 1 else "rgb24"
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if position in keep:
                    array = frame.to_ndarray(format=fmt)
                    frames[position] = array.reshape(*array.shape[:2], channels)
                position += 1
                if position > wanted[-1]:
                    break
    except av.error.FFmpegError as err:
        raise ValueError(
            f"Decoding '{info.path}' failed at frame {position} of {info.num_frames} ({err}). The file is damaged: "
            "replace or remove it."
        ) from err
    if position <= wanted[-1]:
        raise ValueError(
            f"'{info.path}' ends at frame {position} but its header says {info.num_frames} frames (frame "
            f"{wanted[-1]} was needed): the file is truncated or damaged. Replace or remove it."
        )
    return frames
