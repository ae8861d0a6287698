"""Components from installed packages (entry-point group `glovita.components`), found once, without torch.

An entry point names a config class (`glovita_toy.config:ToyStepConfig`). Its discriminator field says which
choice it joins (`dataset` -> data, `encoder_type` -> model.encoder, `head_type` -> model.head, `step_type` ->
training.step) and its tag is that field's default; its ClassVar `builder` ("module:function") names the function
the factory calls to build it (imported only then). A package that fails to load, a class that is not a config
class, or a tag that a built-in (or an earlier package) already uses is named on stderr once and skipped: the
CLI, `--help` and every other component keep working.
"""

import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module, metadata
from typing import Any

from glovita.configs.base import GlovitaConfig

GROUP = "glovita.components"
"""The entry-point group installed packages add components under."""

ROLES = {
    "dataset": "data",
    "encoder_type": "model.encoder",
    "head_type": "model.head",
    "step_type": "training.step",
}
"""Discriminator field -> the config choice an extension's class joins."""


@dataclass
class Discovery:
    """The installed packages' config classes by discriminator field."""

    members: dict[str, list[type[GlovitaConfig]]] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    """Tag -> the distribution that provides it (for messages)."""


def _tag(cls: type[GlovitaConfig], discriminator: str) -> str | None:
    info = cls.model_fields.get(discriminator)
    return info.default if info is not None and isinstance(info.default, str) else None


def _load(entry: metadata.EntryPoint) -> tuple[type[GlovitaConfig], str, str]:
    """The entry point's config class, its discriminator and tag; ValueError says what is wrong with it."""
    loaded = entry.load()
    if not (isinstance(loaded, type) and issubclass(loaded, GlovitaConfig)):
        raise ValueError(f"'{entry.value}' is not a config class (a subclass of glovita.configs.base.GlovitaConfig)")
    found = [name for name in ROLES if name in loaded.model_fields]
    if len(found) != 1:
        raise ValueError(f"{loaded.__name__} has {found or 'none'} of the discriminator fields {', '.join(ROLES)}")
    tag = _tag(loaded, found[0])
    if tag is None:
        raise ValueError(f"{loaded.__name__}.{found[0]} has no string default (its tag)")
    if not isinstance(getattr(loaded, "builder", None), str) or ":" not in loaded.builder:  # type: ignore[attr-defined]
        raise ValueError(f"{loaded.__name__} has no ClassVar builder = 'module:function'")
    return loaded, found[0], tag


def _distribution(entry: metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return getattr(dist, "name", None) or "an installed package"


_loading = False
"""True while discover() imports the packages' config modules (one that imports a choice module is refused)."""


@cache
def discover() -> Discovery:
    """Every installed package's components, loaded once per process (torch-free: their config modules only)."""
    global _loading
    found = Discovery()
    taken: dict[str, set[str]] = {}
    _loading = True
    try:
        for entry in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            package = _distribution(entry)
            try:
                cls, discriminator, tag = _load(entry)
            except Exception as err:  # noqa: BLE001  # any failure of a third-party package: named and skipped
                skip(f"'{entry.name}' of {package} ({type(err).__name__}: {err})")
                continue
            if tag in taken.setdefault(discriminator, set()):
                skip(f"'{entry.name}' of {package} (its {ROLES[discriminator]} tag {tag!r} is already used by "
                     f"{found.packages[tag]})")  # fmt: skip
                continue
            taken[discriminator].add(tag)
            found.packages[tag] = package
            found.members.setdefault(discriminator, []).append(cls)
    finally:
        _loading = False
    return found


def skip(what: str) -> None:
    """Name a skipped extension on stderr (once: discovery and each choice run once per process)."""
    print(f"warning: GloViTa extension {what} was skipped.", file=sys.stderr)


def extension_members(discriminator: str, builtin_tags: set[str]) -> tuple[type[GlovitaConfig], ...]:
    """The installed packages' config classes that join the choice discriminated by `discriminator`; one whose tag
    a built-in of that choice uses is refused (named on stderr)."""
    if _loading:
        raise ImportError(
            "an extension's config module may import only glovita.configs.base and glovita.configs.fields "
            "(it imported a module that builds a config choice)"
        )
    members = []
    for cls in discover().members.get(discriminator, ()):
        tag = _tag(cls, discriminator)
        if tag in builtin_tags:
            skip(f"{cls.__name__} of {discover().packages[str(tag)]} (its {ROLES[discriminator]} tag {tag!r} is a "
                 "built-in one)")  # fmt: skip
            continue
        members.append(cls)
    return tuple(members)


def build_extension(cfg: GlovitaConfig, *args: Any) -> Any:
    """Call the builder an extension's config class names with `cfg` and the role's arguments (see
    README "Adding a component"); a config that is not an extension's raises TypeError naming the file to edit."""
    builder = getattr(type(cfg), "builder", None)
    if not isinstance(builder, str) or type(cfg) not in {c for cs in discover().members.values() for c in cs}:
        raise TypeError(
            f"No factory branch builds {type(cfg).__name__}: add a case to its factory (glovita/*/factory.py), or "
            "give an installed extension's config class a ClassVar builder."
        )
    module, _, name = builder.partition(":")
    try:
        function = getattr(import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"{type(cfg).__name__}.builder = {builder!r} cannot be imported ({type(err).__name__}: {err}). "
            f"Reinstall the package that provides it ({discover().packages.get(_tag_of(cfg), 'unknown')})."
        ) from err
    return function(cfg, *args)


def _tag_of(cfg: GlovitaConfig) -> str:
    for discriminator in ROLES:
        value = getattr(cfg, discriminator, None)
        if isinstance(value, str):
            return value
    return ""


def unknown_tag(error: Any) -> str | None:
    """For a pydantic ValidationError: the sentence naming a tag that neither GloViTa nor an installed package
    provides (a config saved with an extension that is gone), else None."""
    for item in error.errors():
        if item["type"] == "union_tag_invalid":
            discriminator = str(item["ctx"]["discriminator"]).strip("'")
            tag = item["ctx"]["tag"]
            return (
                f"{ROLES.get(discriminator, discriminator)} tag {tag!r} is not a GloViTa component and no installed "
                f"package provides it (entry-point group {GROUP!r}). Install the package that adds {tag!r}, or "
                "change the config"
            )
    return None
