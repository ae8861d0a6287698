"""`glovita_make_moving_digits`: video sets rendered from the bundled digits, written as real .mp4 files."""

from pathlib import Path

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig


class MovingDigitsConfig(GlovitaConfig):
    """Clips of a digit moving over a textured background (label: the direction, `videos/<direction>/*.mp4`), or
    with --framewise longer videos in which digits come and go (per-frame labels in frame_labels.csv). Writes
    videos/, splits.json (60/20/20) and settings.json (see docs/video.md)."""

    output_dir: Path = Path("data/moving_digits")
    """Folder to create (it must be missing or empty)."""
    num_videos: int = Field(160, gt=4)
    """Number of videos."""
    num_frames: int = Field(16, gt=1)
    """Frames per video."""
    frame_size: int = Field(32, ge=16)
    """Frame height and width in pixels (even: H.264 needs even sizes)."""
    digit_size: int = Field(14, ge=8)
    """Side of the digit in pixels (the 8x8 digits are scaled up)."""
    fps: int = Field(8, gt=0)
    """Frame rate written into the files."""
    framewise: bool = False
    """Write the framewise set instead: each video is a sequence of segments showing one digit of
    framewise_digits (or none), labelled per frame by segments in frame_labels.csv."""
    framewise_digits: list[int] = [0, 1, 2]
    """Digits that appear in the framewise set (its classes are these and `none`)."""
    min_segment_frames: int = Field(4, gt=0)
    """Shortest segment of the framewise set, in frames."""
    seed: int = 0
    """Seed of the backgrounds, digits, motions and splits."""

    @model_validator(mode="after")
    def _check_sizes(self) -> "MovingDigitsConfig":
        if self.frame_size % 2:
            raise ValueError(
                f"frame_size={self.frame_size}: H.264 needs an even frame size. Use {self.frame_size + 1}."
            )
        if self.digit_size >= self.frame_size:
            raise ValueError(f"digit_size={self.digit_size} does not fit frame_size={self.frame_size}.")
        if not self.framewise_digits or not all(0 <= d <= 9 for d in self.framewise_digits):
            raise ValueError(f"framewise_digits={self.framewise_digits}: give digits between 0 and 9.")
        if self.framewise and self.num_frames < 2 * self.min_segment_frames:
            raise ValueError(
                f"num_frames={self.num_frames} is too short for segments of min_segment_frames="
                f"{self.min_segment_frames}; a framewise video needs at least two."
            )
        return self
