"""`glovita_make_moving_digits`: write the moving-digits video set (real .mp4 files)."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.moving_digits import MovingDigitsConfig

_DESCRIPTION = "Render moving-digit videos (.mp4) from the bundled digits: direction clips or framewise segments."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(MovingDigitsConfig, args, "glovita_make_moving_digits", _DESCRIPTION)
    from glovita.datasets.moving_digits import make_moving_digits

    with user_errors("glovita_make_moving_digits"):
        made = make_moving_digits(config)
        sizes = ", ".join(f"{n} {split}" for split, n in made.split_sizes.items())
        print(f"{made.num_videos} videos ({sizes}; classes {', '.join(made.class_names)}) -> {config.output_dir}")
