"""`glovita_infer`: parse the inference config, then predict."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.infer import InferConfig

_DESCRIPTION = """Predict with a trained GloViTa run. --checkpoint_path RUN/checkpoints/best.pt rebuilds the model
from the run's config.json and uses the preprocessing of its resolved_config.json. Predict a split of the run's
dataset (--split, default test), a folder of images (--image_dir) or a CSV of image paths (--image_csv); writes
OUTPUT_DIR/predictions.csv, and metrics.json when true labels are known."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(InferConfig, args, "glovita_infer", _DESCRIPTION)
    from glovita.inference.predict import predict

    with user_errors("glovita_infer"):
        predict(config)
