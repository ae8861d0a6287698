"""The base class of every config block, and the helper that declares a choice between config classes."""

import re
from typing import Annotated, Any, Union, get_args

import tyro
from pydantic import BaseModel, ConfigDict, Field


class GlovitaConfig(BaseModel):
    """Frozen, typo-proof config block: unknown keys fail, running code cannot change settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Docstrings are wrapped at 120 columns in the source; --help and the schema show each paragraph as one
        line, which the terminal (or tyro) wraps at its own width."""
        super().__pydantic_init_subclass__(**kwargs)
        for info in cls.model_fields.values():
            if info.description and "\n" in info.description:
                info.description = reflow(info.description)
        if cls.__doc__ and "\n" in cls.__doc__:
            cls.__doc__ = reflow(cls.__doc__)


def reflow(text: str) -> str:
    """Each paragraph (blank-line separated) of `text` on one line."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(part.split()) for part in paragraphs)


def subcommand_name(cls: type) -> str:
    """CLI subcommand name of a config class: `Cifar10Config` -> `cifar10-config`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", cls.__name__).lower()


def choice(members: Any, discriminator: str) -> Any:
    """A discriminated union of the config classes of `members` (a union written `A | B | C`, or one class); each
    is also a tyro subcommand named after its class.

    The explicit names keep the spec's hyphenated subcommands (`data:cifar10-config`) while flags use underscores.
    Installed packages' config classes with the same discriminator join the union after the built-in ones
    (configs/extensions.py).
    """
    from glovita.configs.extensions import extension_members

    classes: tuple[type[GlovitaConfig], ...] = get_args(members) or (members,)
    builtin = {str(cls.model_fields[discriminator].default) for cls in classes}
    classes = (*classes, *extension_members(discriminator, builtin))
    members = tuple(Annotated[cls, tyro.conf.subcommand(name=subcommand_name(cls))] for cls in classes)
    return Annotated[Union[members], Field(discriminator=discriminator)]  # noqa: UP007


def dotted_fields(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A dumped config as {dotted field name: value} (`optimizer.lr`), the names its flags use; lists and empty
    dicts are values."""
    if isinstance(tree, dict) and tree:
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(dotted_fields(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}
