"""`glovita_inspect RUN_DIR` or `glovita_inspect [training flags]`: look inside a run before (or after) training."""

import sys
from collections.abc import Sequence

from glovita.cli.argv import parse_config, user_errors
from glovita.configs.inspect_run import InspectConfig

_DESCRIPTION = """Inspect a run: its resolved config, a layer table (module, output shape, parameters, trainable) and
one batch's input/target/output statistics through the run's own data and transforms, drawn as a PNG grid.
Give a run directory (its checkpoint's weights are used), or glovita_train's flags (an untrained model).
Own flags: --split, --checkpoint, --num_samples, --depth, --output_dir."""

OWN_FLAGS = ("--split", "--checkpoint", "--num_samples", "--depth", "--output_dir")


def split_own_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(glovita_inspect's own flags with their values, the rest: glovita_train's flags)."""
    own, rest, i = [], [], 0
    while i < len(args):
        word = args[i]
        name = word.split("=", 1)[0]
        if name in OWN_FLAGS:
            taken = 1 if "=" in word else 2
            own += args[i : i + taken]
            i += taken
        else:
            rest.append(word)
            i += 1
    return own, rest


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-"):  # a run directory or checkpoint, then own flags
        config = parse_config(InspectConfig, args, "glovita_inspect", _DESCRIPTION)
        root = None
    else:
        own, rest = split_own_flags(args)
        if "-h" in rest or "--help" in rest:
            parse_config(InspectConfig, ["--help"], "glovita_inspect", _DESCRIPTION)
        config = parse_config(InspectConfig, own, "glovita_inspect", _DESCRIPTION)
        from glovita.cli.train import parse_root_config

        root = parse_root_config(rest, "glovita_inspect")
    from glovita.apps.inspect_run import inspect

    with user_errors("glovita_inspect"):
        result = inspect(config, root)
        print(f"Inspection: {result.grid or 'no picture (the samples are feature vectors)'}; details: {result.details}")
