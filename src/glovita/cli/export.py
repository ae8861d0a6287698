"""`glovita_export`: a trained run's model as ONNX / TorchScript / safetensors, with its preprocessing."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.export import ExportConfig

_DESCRIPTION = "Export a run's model (adapters merged) with preprocessing.json, checked on the run's test split."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(ExportConfig, args, "glovita_export", _DESCRIPTION)
    from glovita.inference.export import export_model

    with user_errors("glovita_export"):
        export_model(config)
