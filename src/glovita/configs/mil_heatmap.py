"""`glovita_mil_heatmap`: which attention file to draw, over what, and how."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class MilHeatmapConfig(GlovitaConfig):
    """Draw a MIL attention file (written by glovita_infer) over its instance grid, optionally on a thumbnail."""

    attention_file: Path
    """An attention file of glovita_infer (OUTPUT_DIR/attention/<slide_id>.h5 or .csv); it needs coords."""
    patch_size: int = Field(gt=0)
    """Side of one instance's patch in the units of the coords (CLAM: level-0 pixels, e.g. 256)."""
    thumbnail: Path | None = None
    """Image of the slide to draw under the attention; unset draws on a plain background."""
    downsample: float | None = Field(None, gt=0)
    """Coords units per thumbnail pixel; unset: the thumbnail spans the patch grid (0 to the farthest patch's far
    edge) across its width."""
    branch: str | None = None
    """Attention branch to draw (a column name such as attention_tumor of clam_mb); unset: the predicted class's
    branch when there is one per class, else the only one."""
    scale: Literal["percentile", "minmax"] = "percentile"
    """Colour scale: each score's percentile among the slide's instances (CLAM's heatmaps), or min-max."""
    top_k: int = Field(10, ge=0)
    """Outline and list the k instances with the highest attention (also written to <output>_top<k>.csv)."""
    alpha: float = Field(0.5, ge=0, le=1)
    """Opacity of the attention colours over the thumbnail."""
    colormap: str = "jet"
    """Matplotlib colormap of the scores."""
    output_file: Path | None = None
    """PNG to write; unset writes <attention file stem>_heatmap.png next to the attention file."""
