"""`glovita_make_digit_slides`: write the digit-slides MIL set (CLAM's per-slide feature layout)."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.digit_slides import DigitSlidesConfig

_DESCRIPTION = "Build 'slides' of digit patches (positive iff a slide holds a 9) as per-slide feature files."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(DigitSlidesConfig, args, "glovita_make_digit_slides", _DESCRIPTION)
    from glovita.datasets.digit_slides import make_digit_slides

    with user_errors("glovita_make_digit_slides"):
        made = make_digit_slides(config)
        print(f"{made.num_slides} slides ({made.num_positive} with a 9, features of dim {made.feature_dim}) -> "
              f"{config.output_dir}")  # fmt: skip
