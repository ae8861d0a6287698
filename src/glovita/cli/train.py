"""`glovita_train`: parse the config tree from the command line, then train."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.root import RootConfig
from glovita.runtime import timeline

_DESCRIPTION = (
    "Train a GloViTa model. Every field of the config tree is a flag (--training.epochs 5). Choose a component "
    "either by its tag (--data.dataset cifar10, --model.encoder.encoder_type timm, --model.head.head_type "
    "classification, --peft.method full_finetuning, --optimizer.name sgd) or by subcommand (data:cifar10-config). "
    "Logging-only metadata: --add_log.KEY VALUE (nested: --add_log.notes.phase warmup)."
)


def parse_root_config(args: Sequence[str], prog: str = "glovita_train") -> RootConfig:
    """Parse both CLI styles (and --add_log.*) into a validated RootConfig."""
    from glovita.cli.common_help import common_flags

    return parse_config(RootConfig, args, prog, _DESCRIPTION, help_header=common_flags)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point. As the command itself (`argv` None) it ends the process at once when the run
    finishes or stops with a message (runtime/exit.py: no interpreter teardown); called from Python (tests,
    notebooks) it returns or raises SystemExit as usual."""
    if argv is not None:
        _main(list(argv))
        return
    try:
        _main(sys.argv[1:])
    except SystemExit as stop:
        if not isinstance(stop.code, int | None):
            raise
        code = stop.code or 0
    else:
        code = 0
    from glovita.runtime.exit import exit_now

    exit_now(code)


def _main(args: list[str]) -> None:
    timeline.mark_early("imports")
    config = parse_root_config(args)
    timeline.mark_early("config")
    # torch is imported only once parsing succeeded
    from glovita.apps.cross_validation import run_cross_validation
    from glovita.training.distributed import init_distributed, shutdown
    from glovita.training.preemption import PREEMPTED_EXIT_CODE
    from glovita.training.run import RunInterrupted, RunPreempted, run_training

    timeline.mark_early("torch_imports")
    with user_errors("glovita_train"):
        dist = init_distributed(config.training.device)
        finished = False
        try:
            if config.folds:
                run_cross_validation(config, ["glovita_train", *args], dist)
            else:
                run_training(config, ["glovita_train", *args], dist)
            finished = True
        except RunInterrupted as stop:
            print(f"glovita_train: {stop}", file=sys.stderr)
            raise SystemExit(130) from None
        except RunPreempted as stop:
            print(f"glovita_train: {stop}", file=sys.stderr)
            raise SystemExit(PREEMPTED_EXIT_CODE) from None
        finally:
            shutdown(dist, together=finished)
