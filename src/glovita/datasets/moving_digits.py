"""Moving digits: a video set we can run anywhere, rendered from scikit-learn's bundled digits as real .mp4 files.

Clip set (direction classes):

    videos/<direction>/video_<i>.mp4   a digit crossing a textured background down, left, right or up
    splits.json                        train/val/test lists of those paths (60/20/20, stratified)

Framewise set (--framewise):

    videos/video_<i>.mp4               segments in which one digit (or none) is visible, drifting
    frame_labels.csv                   video,start_frame,end_frame,label per segment (end_frame inclusive)
    splits.json
"""

import csv
import json
import shutil
from dataclasses import dataclass

import numpy as np

from glovita.configs.moving_digits import MovingDigitsConfig
from glovita.datasets.splits import stratified_split
from glovita.runtime.io import atomic_path

DIRECTIONS = ("down", "left", "right", "up")
NONE_LABEL = "none"
_STEP = {"down": (1, 0), "left": (0, -1), "right": (0, 1), "up": (-1, 0)}


@dataclass(frozen=True)
class MovingDigits:
    num_videos: int
    class_names: list[str]
    split_sizes: dict[str, int]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour texture (size, size, 3) in [0, 110]."""
    from PIL import Image

    coarse = rng.uniform(0, 110, size=(max(2, size // 6), max(2, size // 6), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _sprite(digit_image: np.ndarray, size: int) -> np.ndarray:
    """An 8x8 digit (values 0..16) as an alpha mask (size, size) in [0, 1]."""
    from PIL import Image

    scaled = Image.fromarray((digit_image * 255 / 16).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(scaled, dtype=np.float32) / 255.0


def _draw(background: np.ndarray, alpha: np.ndarray, colour: np.ndarray, top: int, left: int) -> np.ndarray:
    frame = background.copy()
    d = alpha.shape[0]
    region = frame[top : top + d, left : left + d]
    frame[top : top + d, left : left + d] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
    return frame


def _path(rng: np.random.Generator, direction: str, frames: int, span: int) -> list[tuple[int, int]]:
    """Top-left positions of a digit crossing `span` pixels in `direction` over `frames` frames."""
    travel = int(rng.integers(max(2, span * 6 // 10), span + 1))
    start = int(rng.integers(0, span - travel + 1))
    across = int(rng.integers(0, span + 1))
    dy, dx = _STEP[direction]
    moves = np.round(np.linspace(0, travel, frames)).astype(int)
    along = [start + m if (dy + dx) > 0 else span - start - m for m in moves]
    return [(a, across) if dy else (across, a) for a in along]


def _clip(cfg: MovingDigitsConfig, rng: np.random.Generator, images: np.ndarray, direction: str) -> np.ndarray:
    background = _background(rng, cfg.frame_size)
    alpha = _sprite(images[int(rng.integers(len(images)))], cfg.digit_size)
    colour = rng.uniform(170, 255, size=3).astype(np.float32)
    positions = _path(rng, direction, cfg.num_frames, cfg.frame_size - cfg.digit_size)
    frames = [_draw(background, alpha, colour, top, left) for top, left in positions]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _segments(cfg: MovingDigitsConfig, rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """(start, end inclusive, label) covering the video; neighbouring segments differ in label."""
    bounds = [0]
    while cfg.num_frames - bounds[-1] >= 2 * cfg.min_segment_frames:
        longest = cfg.num_frames - bounds[-1] - cfg.min_segment_frames
        bounds.append(
            bounds[-1] + int(rng.integers(cfg.min_segment_frames, min(longest, 3 * cfg.min_segment_frames) + 1))
        )
    bounds.append(cfg.num_frames)
    choices = [NONE_LABEL, *(str(d) for d in cfg.framewise_digits)]
    labels: list[str] = []
    for _ in range(len(bounds) - 1):
        options = [c for c in choices if not labels or c != labels[-1]]
        labels.append(options[int(rng.integers(len(options)))])
    return [(bounds[i], bounds[i + 1] - 1, labels[i]) for i in range(len(labels))]


def _framewise_video(
    cfg: MovingDigitsConfig, rng: np.random.Generator, by_digit: dict[str, np.ndarray], segments: list
) -> np.ndarray:
    background = _background(rng, cfg.frame_size)
    span = cfg.frame_size - cfg.digit_size
    frames = []
    for start, end, label in segments:
        count = end - start + 1
        if label == NONE_LABEL:
            frames += [background] * count
            continue
        pool = by_digit[label]
        alpha = _sprite(pool[int(rng.integers(len(pool)))], cfg.digit_size)
        colour = rng.uniform(170, 255, size=3).astype(np.float32)
        for top, left in _path(rng, DIRECTIONS[int(rng.integers(4))], count, span):
            frames.append(_draw(background, alpha, colour, top, left))
    noise = rng.normal(0, 4, size=(len(frames), *frames[0].shape)).astype(np.float32)
    return np.clip(np.stack(frames) + noise, 0, 255).astype(np.uint8)


def _split(labels: list[str], seed: int) -> dict[str, list[int]]:
    rest, test = stratified_split(labels, 0.2, seed, stratify=True)
    train, val = stratified_split([labels[i] for i in rest], 0.25, seed, stratify=True)
    return {"train": [rest[i] for i in train], "val": [rest[i] for i in val], "test": sorted(test)}


def make_moving_digits(cfg: MovingDigitsConfig) -> MovingDigits:
    """Write the set into cfg.output_dir (filled under a temporary name and renamed at the end)."""
    from sklearn.datasets import load_digits

    from glovita.datasets.videos import write_video
    from glovita.runtime.progress import progress_bar

    out = cfg.output_dir
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"output_dir '{out}' exists and is not an empty folder. Choose a new folder.")
    digits = load_digits()
    rng = np.random.default_rng(cfg.seed)
    if out.exists():
        out.rmdir()
    with atomic_path(out) as staging, progress_bar("rendering videos", cfg.num_videos) as bar:
        shutil.rmtree(staging, ignore_errors=True)
        ids: list[str] = []
        strata: list[str] = []
        rows: list[list] = []
        for i in range(cfg.num_videos):
            if cfg.framewise:
                by_digit = {str(d): digits.images[digits.target == d] for d in cfg.framewise_digits}
                segments = _segments(cfg, rng)
                frames = _framewise_video(cfg, rng, by_digit, segments)
                video_id = f"video_{i:04d}.mp4"
                rows += [[video_id, start, end, label] for start, end, label in segments]
                strata.append(str(len(segments)))
            else:
                direction = DIRECTIONS[i % len(DIRECTIONS)]
                frames = _clip(cfg, rng, digits.images, direction)
                video_id = f"{direction}/video_{i:04d}.mp4"
                strata.append(direction)
            write_video(staging / "videos" / video_id, frames, cfg.fps)
            ids.append(video_id)
            bar.update(1)
        parts = _split(strata, cfg.seed)
        splits = {name: [ids[i] for i in members] for name, members in parts.items()}
        (staging / "splits.json").write_text(json.dumps(splits, indent=1))
        if cfg.framewise:
            with (staging / "frame_labels.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["video", "start_frame", "end_frame", "label"])
                writer.writerows(rows)
        (staging / "settings.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=1))
    names = sorted({NONE_LABEL, *map(str, cfg.framewise_digits)}) if cfg.framewise else list(DIRECTIONS)
    return MovingDigits(cfg.num_videos, names, {k: len(v) for k, v in splits.items()})
