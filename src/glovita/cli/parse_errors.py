"""tyro's and pydantic's refusals of command-line input, as GloViTa's own one-line errors (`prog: error: ...`):
no `[type=..., input_value=...]`, no pydantic URL, no boxes. An unknown flag gets one "did you mean" line (a field of
the same name elsewhere in the tree, a close spelling, or the union member that has it); an out-of-range value
names the flag and the bound; a cross-field rule prints its own sentence."""

import difflib
import re
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from glovita.cli.argv import union_members


class CommandLineError(ValueError):
    """A refused command line, already worded as one line."""


@dataclass
class FlagIndex:
    """Every flag of a config tree (union members' included), which member classes hold it, and where each config
    class sits (its dotted prefix)."""

    owners: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """--flag -> [(union path, discriminator, member tag)] for fields of a union member, [] elsewhere."""
    prefixes: dict[str, list[str]] = field(default_factory=dict)
    """Config class name -> the dotted prefixes it appears at ('' for the root)."""


def index_flags(model: type[BaseModel], prefix: str = "", index: FlagIndex | None = None,
                member: tuple[str, str, str] | None = None) -> FlagIndex:  # fmt: skip
    index = index if index is not None else FlagIndex()
    index.prefixes.setdefault(model.__name__, []).append(prefix)
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        members = union_members(info.annotation)
        annotation = info.annotation
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        if members and isinstance(info.discriminator, str):
            for cls in members:
                tag = str(typing.get_args(cls.model_fields[info.discriminator].annotation)[0])
                index_flags(cls, f"{path}.", index, (path, info.discriminator, tag))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            index_flags(annotation, f"{path}.", index, member)
        else:
            index.owners.setdefault(f"--{path}", [])
            if member is not None:
                index.owners[f"--{path}"].append(member)
    return index


def unknown_flag(flag: str, index: FlagIndex) -> str:
    """One line for an unrecognised flag: the member it belongs to, the field of that name, or a close spelling."""
    flag = flag.split("=", 1)[0]
    owners = index.owners.get(flag)
    if owners:
        path, discriminator, _ = owners[0]
        tags = sorted({tag for _, _, tag in owners})
        return (f"{flag} is an option of {path} {' / '.join(tags)}, not of the one chosen: add --{path}."
                f"{discriminator} {tags[0]}.")  # fmt: skip
    name = flag.removeprefix("--").rsplit(".", 1)[-1]
    same = sorted(f for f in index.owners if f.rsplit(".", 1)[-1] == name or f == f"--{name}")
    if same:
        return f"unknown flag {flag}. Did you mean {' or '.join(same[:3])}?"
    close = difflib.get_close_matches(flag, list(index.owners), n=1, cutoff=0.75)
    if close:
        return f"unknown flag {flag}. Did you mean {close[0]}?"
    return f"unknown flag {flag}. See --help for the flags."


_BOUND = re.compile(r"Input should be (.*?)( \[type=.*)?$")


def validation_text(message: str, index: FlagIndex, flag: str | None = None) -> str:
    """pydantic's ValidationError text (or a conversion error) as one line per error, naming the flag."""
    lines = [line for line in message.splitlines() if line.strip() and "errors.pydantic.dev" not in line]
    header = re.match(r"\d+ validation errors? for (\w+)", lines[0]) if lines else None
    if header is None:
        text = " ".join(line.strip() for line in lines)
        conversion = re.match(r"(invalid literal for int\(\) with base 10|could not convert string to float): (.*)$",
                              text)  # fmt: skip
        if conversion:
            kind = "a whole number" if "int()" in conversion.group(1) else "a number"
            text = f"{conversion.group(2)} is not {kind}"
        return f"{flag}: {text}." if flag else text
    prefix = (index.prefixes.get(header.group(1)) or [""])[0]
    parts = []
    location = ""
    for line in lines[1:]:
        if not line.startswith(" "):
            location = line.strip()
            continue
        text = re.sub(r" \[type=.*$", "", line.strip())
        if text.startswith("Value error, "):
            parts.append(text.removeprefix("Value error, "))
            continue
        given = re.search(r"input_value=([^,\]]+)", line)
        name = f"--{prefix}{location}" if location else (flag or "")
        value = f" {given.group(1)}" if given and len(given.group(1)) < 40 else ""
        bound = _BOUND.match(text)
        parts.append(f"{name}{value}: must be {bound.group(1)}." if bound else f"{name}{value}: {text}.")
    return " ".join(parts)


def _flags(argument: Any) -> list[str]:
    """The flag names of one of tyro's argument definitions."""
    return list(getattr(getattr(argument, "lowered", None), "name_or_flags", ()) or ())


@contextmanager
def one_line_errors(config_class: type[BaseModel]) -> Iterator[None]:
    """While tyro parses, turn its refusals into CommandLineError (one line); tyro versions without the hook keep
    their own messages."""
    try:
        from tyro import _errors
    except ImportError:  # pragma: no cover - tyro moved its internal hook
        yield
        return
    hooks = getattr(_errors, "on_parse_error", None)
    if hooks is None:  # pragma: no cover
        yield
        return

    def hook(event: Any) -> None:
        index = index_flags(config_class)  # only when something is refused
        kind = type(event).__name__
        if kind == "UnrecognizedArgs":
            flags = [t for t in event.tokens if t.startswith("--")]
            if flags:
                raise CommandLineError(" ".join(unknown_flag(f, index) for f in flags[:3]))
        elif kind == "MissingArgs":
            missing = []
            for item in event.missing_arguments:
                names = _flags(item.arg)
                help_text = " ".join(str(getattr(item.arg.field, "helptext", "") or "").split())
                missing.append(f"{names[0] if names else '?'} is required ({help_text.rstrip('.')})")
            raise CommandLineError("; ".join(missing) + ".")
        elif kind == "InvalidChoice":
            names = _flags(event.argument)
            choices = [str(c) for c in event.choices]
            close = difflib.get_close_matches(str(event.value), choices, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise CommandLineError(f"{names[0] if names else 'a flag'}: {event.value!r} is not one of "
                                   f"{', '.join(choices)}.{hint}")  # fmt: skip
        elif kind == "InstantiationFailure":
            argument = getattr(event, "argument", None)
            flag = next(iter(_flags(argument)), None) if argument is not None else None
            raise CommandLineError(validation_text(str(event.message), index, flag))
        return None

    with hooks(hook):
        yield
