"""`glovita_plot_umap`: a UMAP scatter of a feature file, saved as PNG (and optional HTML)."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.plot_umap import PlotUmapConfig

_DESCRIPTION = "Embed a precomputed-feature HDF5 file with UMAP and save a scatter plot coloured by label."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(PlotUmapConfig, args, "glovita_plot_umap", _DESCRIPTION)
    from glovita.features.umap_plot import plot_umap

    with user_errors("glovita_plot_umap"):
        png, _, _ = plot_umap(config)
        print(f"UMAP plot: {png}")
