"""`glovita_make_digit_slides`: a MIL set of "slides" made of digit patches, laid out as CLAM writes features."""

from pathlib import Path

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig


class DigitSlidesConfig(GlovitaConfig):
    """Slides = grids of bundled digits; label `positive` iff a slide holds a 9. Writes h5_files/, labels.csv,
    splits/splits_<k>.csv and thumbnails/ (see docs/mil_slides.md)."""

    output_dir: Path = Path("data/digit_slides")
    """Folder to create (it must be missing or empty)."""
    features_dir: Path | None = None
    """Output folder of glovita_extract_features on a digits run (one .h5 per split): the patches are its val and
    test digits, which the encoder never trained on. Unset: every digit's 64 raw pixel values are its features."""
    num_slides: int = Field(200, gt=3)
    """Number of slides."""
    grid_min: int = Field(4, ge=1)
    """Smallest side of a slide's patch grid (sides are drawn between grid_min and grid_max)."""
    grid_max: int = Field(8, ge=1)
    """Largest side of a slide's patch grid."""
    positive_fraction: float = Field(0.5, gt=0, lt=1)
    """Share of slides that hold at least one 9."""
    max_nines: int = Field(3, gt=0)
    """A positive slide holds between 1 and this many 9s."""
    patch_pixels: int = Field(32, gt=0)
    """Thumbnail pixels per patch side; coords are in these pixels (pass it as glovita_mil_heatmap --patch_size)."""
    num_folds: int = Field(3, gt=0)
    """CLAM-style splits_<k>.csv files: a fixed test set of cases, the rest divided into folds for validation."""
    test_fraction: float = Field(0.25, gt=0, lt=1)
    """Share of cases in the test split."""
    seed: int = 0
    """Seed of the slide contents, cases and splits."""

    @model_validator(mode="after")
    def _check_grid(self) -> "DigitSlidesConfig":
        if self.grid_max < self.grid_min:
            raise ValueError(f"grid_max={self.grid_max} is below grid_min={self.grid_min}.")
        if self.max_nines > self.grid_min**2:
            raise ValueError(f"max_nines={self.max_nines} does not fit a {self.grid_min}x{self.grid_min} grid.")
        return self
