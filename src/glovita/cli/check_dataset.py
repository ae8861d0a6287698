"""`glovita_check_dataset`: check a dataset's files and labels and count its classes, without training."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.check_dataset import CheckDatasetConfig

_DESCRIPTION = """Check a dataset as glovita_train reads it (same --data.* flags): every split's files exist and decode,
label maps fit their images and hold known classes; prints samples and classes per split (pixel shares for label
maps), every problem and the entries to drop. Exits 1 when a file cannot be used."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(CheckDatasetConfig, args, "glovita_check_dataset", _DESCRIPTION)
    from glovita.datasets.inspection import check_dataset, report_lines

    with user_errors("glovita_check_dataset"):
        check = check_dataset(config)
    folder = getattr(config.data, "images_dir", None)  # generic image datasets list ids relative to it
    id_root = config.data.data_root_dir / folder if folder is not None else None
    print("\n".join(report_lines(check, config.max_listed, id_root)))
    if check.problems:
        raise SystemExit(1)
