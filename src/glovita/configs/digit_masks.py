"""`glovita_make_digit_masks`: a segmentation set of bundled digits drawn on cluttered backgrounds, with masks."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class DigitMasksConfig(GlovitaConfig):
    """scikit-learn's digits, enlarged and drawn in colour on cluttered backgrounds, with a label map per image.
    Writes images/<digit>/<n>.png, masks/<digit>/<n>.png and splits.json (see docs/segmentation.md)."""

    output_dir: Path = Path("data/digit_masks")
    """Folder to create (it must be missing or empty)."""
    image_size: int = Field(48, ge=16)
    """Side of the square images, in pixels."""
    num_images: int = Field(1797, gt=9)
    """Images to write (each draws one of the 1,797 digits; more repeat them on new backgrounds)."""
    classes: Literal["binary", "digit"] = "binary"
    """Mask values: binary = 0 background, 1 digit stroke; digit = 0 background, 1 + the digit (11 classes)."""
    clutter_lines: int = Field(6, ge=0)
    """Random line segments drawn across each background (what a global threshold confuses with strokes)."""
    noise_std: float = Field(0.04, ge=0)
    """Standard deviation of the Gaussian pixel noise (intensities in [0, 1])."""
    style: Literal["cluttered", "plain"] = "cluttered"
    """cluttered: coloured digits of random size and place on cluttered gradients; plain: white digits on black,
    centred (within 2 pixels) at three quarters of the side, as MNIST draws them (clutter_lines do not apply)."""
    decoy_size: int = Field(0, ge=0)
    """Side of a decoy square in a random corner whose grey shade gives the digit away in train and val
    (255 - 25 x digit) and is random in test; masks leave it out. 0 draws none."""
    seed: int = 0
    """Seed of the placement, colours, clutter and splits."""
