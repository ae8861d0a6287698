"""`glovita_show_augmentations`: save a PNG grid of training images under the effective train policy."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.show_augmentations import ShowAugmentationsConfig

_DESCRIPTION = """Preview the effective training augmentation: each row is one training image, first as the test
policy shows it, then several draws of the train policy. Same --data.* and --model.* flags as glovita_train."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(ShowAugmentationsConfig, args, "glovita_show_augmentations", _DESCRIPTION)
    from glovita.preview.augmentations import show_augmentations

    with user_errors("glovita_show_augmentations"):
        print(f"Augmentation grid: {show_augmentations(config)}")
