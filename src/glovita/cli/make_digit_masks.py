"""`glovita_make_digit_masks`: write the digit segmentation set (images, label maps, splits.json)."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.digit_masks import DigitMasksConfig

_DESCRIPTION = "Draw bundled digits on cluttered backgrounds with a label map per image (a segmentation set)."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(DigitMasksConfig, args, "glovita_make_digit_masks", _DESCRIPTION)
    from glovita.datasets.digit_masks import make_digit_masks

    with user_errors("glovita_make_digit_masks"):
        made = make_digit_masks(config)
        print(f"{made.num_images} images with masks ({made.num_classes} classes, {made.foreground_share:.1%} digit "
              f"pixels) -> {config.output_dir}")  # fmt: skip
