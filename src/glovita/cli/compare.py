"""`glovita_compare`: a table of runs (CSV + Markdown), printed."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.compare import CompareConfig

_DESCRIPTION = "Tabulate runs: the settings that differ, best epoch, test metrics, wall time, throughput."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(CompareConfig, args, "glovita_compare", _DESCRIPTION)
    from glovita.apps.compare import compare_runs

    with user_errors("glovita_compare"):
        compare_runs(config)
