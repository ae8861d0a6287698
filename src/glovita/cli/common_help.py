"""The "common flags" block at the top of `glovita_train --help`: the flags most runs set, each with all its
choices and its default, before tyro's full listing of the config tree."""

import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from glovita.cli.argv import find_union_fields

COMMON_FLAGS = (
    "data.dataset",
    "data.data_root_dir",
    "model.encoder.encoder_type",
    "model.encoder.type",
    "training.epochs",
    "optimizer.lr",
    "dataloading.batch_size",
    "training.device",
    "training.precision",
)
"""In the order the block lists them."""


def _first_sentence(text: str | None) -> str:
    """Up to the first full stop that ends a sentence (not the one of `e.g.` or `i.e.`)."""
    words = " ".join((text or "").split())
    found = re.search(r"(?<!e\.g)(?<!i\.e)\.\s", words + " ")
    return words if found is None else words[: found.start() + 1]


def _field(config: BaseModel, path: str) -> tuple[Any, Any] | None:
    """(pydantic FieldInfo, current value) of a dotted path in `config`, or None where the path does not exist."""
    node: Any = config
    parts = path.split(".")
    for part in parts[:-1]:
        node = getattr(node, part, None)
        if not isinstance(node, BaseModel):
            return None
    info = type(node).model_fields.get(parts[-1])
    return None if info is None else (info, getattr(node, parts[-1]))


def common_flags(config_class: type[BaseModel], base: BaseModel) -> str:
    """The block: `--flag {choice,...}  (default: X)` then the field's first sentence, for each COMMON_FLAGS entry
    the chosen components have (the default dataset and encoder unless the command line chose others)."""
    unions = {f"{u.path}.{u.discriminator}": sorted(u.subcommands) for u in find_union_fields(config_class, base)}
    lines = ["Common flags (every flag is listed further down; `--data.dataset NAME --help` shows that dataset's):"]
    for path in COMMON_FLAGS:
        found = _field(base, path)
        if found is None:
            continue
        info, value = found
        choices = unions.get(path)
        if choices is None and typing.get_origin(info.annotation) is typing.Literal:
            choices = [str(c) for c in typing.get_args(info.annotation)]
        kind = "PATH" if isinstance(value, Path) else type(value).__name__.upper()
        shown = "{" + ",".join(choices) + "}" if choices else kind
        lines.append(f"  --{path} {shown}  (default: {value})")
        sentence = _first_sentence(info.description)
        if sentence:
            lines.append(f"      {sentence}")
    return "\n".join(lines)
