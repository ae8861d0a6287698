"""`glovita_train`: parse the config tree from the command line, then train."""

import sys
from collections.abc import Sequence

import tyro

from glovita.cli.argv import extract_add_log, find_union_fields, select_subcommands, user_errors
from glovita.configs.root import RootConfig

_DESCRIPTION = """Train a GloViTa model. Every field of the config tree is a flag (--training.epochs 5).
Choose a component either by its tag (--data.dataset cifar10, --model.encoder.encoder_type timm,
--model.head.head_type classification, --peft.method full_finetuning, --optimizer.name sgd) or by subcommand
(data:cifar10-config). Logging-only metadata: --add_log.KEY VALUE (nested: --add_log.notes.phase warmup)."""


def parse_root_config(args: Sequence[str], prog: str = "glovita_train") -> RootConfig:
    """Parse both CLI styles (and --add_log.*) into a validated RootConfig."""
    with user_errors(prog):
        rest, add_log = extract_add_log(args)
        rest = select_subcommands(rest, find_union_fields(RootConfig))
    config = tyro.cli(
        RootConfig,
        args=rest,
        prog=prog,
        description=_DESCRIPTION,
        use_underscores=True,
        config=(tyro.conf.CascadeSubcommandArgs,),
    )
    if add_log:
        config = config.model_copy(update={"add_log": add_log})
    return config


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    config = parse_root_config(args)
    from glovita.training.run import run_training  # torch is imported only once parsing succeeded

    with user_errors("glovita_train"):
        run_training(config, argv=["glovita_train", *args])
