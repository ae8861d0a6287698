"""Command-line pre-processing shared by the entry points.

tyro selects a discriminated-union member with a subcommand (`data:cifar10-config`). The spec's explicit field
style (`--data.dataset cifar10`) names the same choice through the discriminator field; it is rewritten here into
the subcommand token, so both styles reach the same config class. `--add_log.*` holds free-form keys, which no
schema can list, so it is taken out before tyro parses and returned as a nested dict.
"""

import difflib
import json
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Union

import tyro
from pydantic import BaseModel

from glovita.configs.base import subcommand_name

_ADD_LOG_PREFIX = "--add_log."


@dataclass(frozen=True)
class UnionField:
    """A discriminated-union field of the config tree, e.g. path `model.encoder`, discriminator `encoder_type`."""

    path: str
    discriminator: str
    subcommands: dict[str, str]
    """Tag value -> tyro subcommand name (`cifar10` -> `cifar10-config`)."""
    default: str
    """Subcommand name of the default member."""


def union_members(annotation: Any) -> list[type[BaseModel]]:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (Union, types.UnionType):
        return []
    members = [
        typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in typing.get_args(annotation)
    ]
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def find_union_fields(model: type[BaseModel], default: BaseModel | None = None, prefix: str = "") -> list[UnionField]:
    """Every discriminated-union field below `model` (defaults taken from `default`), in tyro's subcommand order."""
    # Required fields (a file to read) have no default; only the defaults of union and nested fields are read.
    default = default if default is not None else model.model_construct()
    found: list[UnionField] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        members = union_members(info.annotation)
        value = getattr(default, name, None)
        if members and isinstance(info.discriminator, str):
            tags = {
                typing.get_args(m.model_fields[info.discriminator].annotation)[0]: subcommand_name(m) for m in members
            }
            found.append(UnionField(path, info.discriminator, tags, subcommand_name(type(value))))
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            found.extend(find_union_fields(info.annotation, value, prefix=f"{path}."))
    return found


def _choice_error(flag: str, value: str, choices: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"{flag}: {value!r} is not one of {', '.join(sorted(choices))}.{hint}")


def select_subcommands(args: Sequence[str], unions: Sequence[UnionField]) -> list[str]:
    """Rewrite `--<path>.<discriminator> TAG` into tyro subcommand tokens and put one token per union first.

    Unions the user did not choose get their default's token: tyro does not match negative boolean flags
    (`--model.encoder.no_pretrained`) of a subcommand that was left implicit.
    """
    by_flag = {f"{u.path}.{u.discriminator}": u for u in unions}
    by_path = {u.path: u for u in unions}
    chosen: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, has_value, value = arg[2:].partition("=") if arg.startswith("--") else ("", False, "")
        union = by_flag.get(key.replace("-", "_"))
        if union is not None:
            if not has_value:
                if i + 1 >= len(args):
                    raise ValueError(f"--{key} needs a value: one of {', '.join(sorted(union.subcommands))}.")
                i += 1
                value = args[i]
            if value not in union.subcommands:
                raise _choice_error(f"--{key}", value, list(union.subcommands))
            token = f"{union.path}:{union.subcommands[value]}"
        elif ":" in arg and not arg.startswith("-") and arg.split(":", 1)[0] in by_path:
            union = by_path[arg.split(":", 1)[0]]
            token = arg
            names = [f"{union.path}:{name}" for name in union.subcommands.values()]
            if token not in names:
                raise _choice_error("subcommand", token, names)
        else:
            rest.append(arg)
            i += 1
            continue
        if chosen.get(union.path, token) != token:
            raise ValueError(f"{union.path} is chosen twice ({chosen[union.path]} and {token}). Keep one.")
        chosen[union.path] = token
        i += 1
    if any(arg in ("-h", "--help") for arg in rest):
        return [chosen[u.path] for u in unions if u.path in chosen] + rest
    return [chosen.get(u.path, f"{u.path}:{u.default}") for u in unions] + rest


def _parse_scalar(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def extract_add_log(args: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Take `--add_log.a.b VALUE` (or `=VALUE`) out of args; return the rest and the nested metadata dict."""
    metadata: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith(_ADD_LOG_PREFIX):
            rest.append(arg)
            i += 1
            continue
        key, has_value, value = arg[len(_ADD_LOG_PREFIX) :].partition("=")
        if not has_value:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ValueError(f"{arg} needs a value, e.g. {arg} 'scratch baseline'.")
            i += 1
            value = args[i]
        parts = key.split(".")
        if not all(parts):
            raise ValueError(f"{arg}: empty key part. Use --add_log.KEY or --add_log.GROUP.KEY.")
        node = metadata
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{arg}: --add_log.{part} is already a value, not a group.")
            node = child
        node[parts[-1]] = _parse_scalar(value)
        i += 1
    return rest, metadata


@contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Print errors in user input as one line (`prog: error: ...`) and exit 2; GLOVITA_DEBUG=1 keeps tracebacks."""
    import os

    from glovita.errors import DiskFullError

    try:
        yield
    except (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError, TypeError, DiskFullError) as err:
        if os.environ.get("GLOVITA_DEBUG"):
            raise
        message = str(err).strip()
        if type(err).__name__ == "CommandLineError":  # already one line, about the command line itself
            print(f"{prog}: error: {message}", file=sys.stderr)
            raise SystemExit(2) from None
        # DataLoader workers re-raise with the worker's traceback in the message; its last line is ours.
        if "Original Traceback" in message:
            message = message.splitlines()[-1].split(": ", 1)[-1]
        print(f"{prog}: error: {message}", file=sys.stderr)
        print(f"{prog}: (set GLOVITA_DEBUG=1 for the full traceback)", file=sys.stderr)
        raise SystemExit(2) from None


_FILE_HELP = (
    "\n--config FILE       start from a config file (a run's config.json, or JSON/YAML with any part of the tree); "
    "flags override it\n--preset NAME       start from a named preset ({presets}); --config and flags override it\n"
    "--print_config [json|yaml]  print the effective config and exit (feed it back with --config)"
)


def parse_config(
    config_class: type[BaseModel],
    args: Sequence[str],
    prog: str,
    description: str,
    help_header: Callable[[type[BaseModel], BaseModel], str] | None = None,
) -> Any:
    """Parse both CLI styles (and --add_log.* where the class has add_log) into a validated config, over the
    base that --preset and --config give; --print_config prints the result and exits. `help_header` writes what
    --help shows above the description (glovita_train: the common flags)."""
    from glovita.cli.config_file import base_config, print_config, take_options

    with user_errors(prog):
        rest, options = take_options(args)
        rest, add_log = extract_add_log(rest)
        if add_log and "add_log" not in config_class.model_fields:
            raise ValueError(f"{prog} takes no --add_log.* metadata.")
        base = base_config(config_class, options)
        rest = select_subcommands(rest, find_union_fields(config_class, base))
        if help_header is not None and any(arg in ("-h", "--help") for arg in rest):
            shown = base if base is not None else config_class.model_construct()
            description = f"{help_header(config_class, shown)}\n\n{description}"
    from glovita.cli.parse_errors import one_line_errors
    from glovita.configs.presets import PRESETS

    with user_errors(prog), one_line_errors(config_class):
        config: Any = tyro.cli(
            config_class,
            args=rest,
            prog=prog,
            description=description + _FILE_HELP.format(presets=", ".join(sorted(PRESETS))),
            use_underscores=True,
            default=base,
            config=(tyro.conf.CascadeSubcommandArgs,),
        )
    saved_log = getattr(base, "add_log", None) or {}
    if add_log or saved_log:
        config = config.model_copy(update={"add_log": {**saved_log, **add_log}})
    if "--print_config" in options:
        print_config(config, options["--print_config"] or "json")
        raise SystemExit(0)
    return config
