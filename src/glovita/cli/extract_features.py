"""`glovita_extract_features`: parse the extraction config, then write the feature files."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.extract import ExtractFeaturesConfig

_DESCRIPTION = """Extract encoder features into HDF5 files that --data.dataset precomputed_features reads.
Explicit config mode: give --data.* and --model.* as for glovita_train. Checkpoint mode: give
--checkpoint_path RUN/checkpoints/best.pt; the run's config.json rebuilds data, model and PEFT."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(ExtractFeaturesConfig, args, "glovita_extract_features", _DESCRIPTION)
    from glovita.features.extract import extract_features

    with user_errors("glovita_extract_features"):
        extract_features(config)
