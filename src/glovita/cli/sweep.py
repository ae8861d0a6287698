"""`glovita_sweep`: an Optuna study whose trials are glovita_train runs."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.sweep import SweepConfig

_DESCRIPTION = """Hyper-parameter search with Optuna. Usage:
  glovita_sweep --study NAME --trials N --space space.yaml [--storage URL] -- <glovita_train flags>
The space file names config fields with ranges or choices; every trial is a run in <dataset>/<study>/trial_<n>."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    sweep_args, train_args = args[:split], args[split + 1 :]
    config = parse_config(SweepConfig, sweep_args, "glovita_sweep", _DESCRIPTION)
    from glovita.apps.sweep import run_sweep
    from glovita.cli.train import parse_root_config

    with user_errors("glovita_sweep"):
        if "--" not in args:
            raise ValueError("Give the glovita_train flags after '--', e.g. glovita_sweep --study lr --trials 12 "
                             "--space space.yaml -- --data.dataset digits --training.epochs 10.")  # fmt: skip
        run_sweep(config, train_args, parse_root_config)
