"""`glovita_plot_umap`: which feature file to embed and how to draw it."""

from pathlib import Path

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class PlotUmapConfig(GlovitaConfig):
    """A 2D UMAP of a precomputed-feature file (instances, or one mean vector per bag), coloured by label."""

    features_file: Path
    """HDF5 feature file (any layout glovita reads)."""
    output_file: Path | None = None
    """PNG to write; unset writes <features file stem>_umap.png next to the features file."""
    html: bool = False
    """Also write an interactive HTML scatter (hover shows id and label) next to the PNG."""
    n_neighbors: int = Field(15, gt=1)
    """UMAP neighbourhood size."""
    min_dist: float = Field(0.1, ge=0)
    """UMAP minimum distance between embedded points."""
    metric: str = "euclidean"
    """UMAP distance metric (any name umap-learn accepts)."""
    max_points: int | None = Field(20000, gt=0)
    """Embed a random subset of at most this many points (fixed seed); unset embeds all."""
    seed: int = 0
    """Seed of UMAP and of the subset."""
