"""`glovita_report`: (re)build report.html for runs and cross-validation groups."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.report import ReportConfig

_DESCRIPTION = "Build the self-contained report.html of a run directory, or of a cross-validation group."


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(ReportConfig, args, "glovita_report", _DESCRIPTION)
    from glovita.reports.html import write_group_report, write_run_report

    with user_errors("glovita_report"):
        if not config.paths:
            raise ValueError("Name a run directory (experiments/digits/my_run/0) or a CV group folder.")
        for path in config.paths:
            if (path / "cv_summary.json").is_file():
                print(f"Report: {write_group_report(path)}")
            elif (path / "config.json").is_file():
                print(f"Report: {write_run_report(path)}")
            else:
                raise ValueError(f"'{path}' is neither a run directory (config.json) nor a CV group (cv_summary.json).")
