"""`glovita_mil_heatmap`: a MIL attention heatmap over the instance grid (and a thumbnail), saved as PNG."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.mil_heatmap import MilHeatmapConfig

_DESCRIPTION = "Draw the attention of a MIL run (glovita_infer's attention file) over the slide's patch grid."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(MilHeatmapConfig, args, "glovita_mil_heatmap", _DESCRIPTION)
    from glovita.inference.heatmap import draw_heatmap

    with user_errors("glovita_mil_heatmap"):
        drawn = draw_heatmap(config)
        print(f"Heatmap: {drawn.png}")
