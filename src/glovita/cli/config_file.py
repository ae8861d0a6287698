"""`--config FILE`, `--preset NAME` and `--print_config`: a saved or hand-written config (JSON or YAML, any subset
of the tree) or a named preset becomes the base that command-line flags override. Imports no torch."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

_OPTIONS = ("--config", "--preset", "--print_config")


def take_options(args: Sequence[str]) -> tuple[list[str], dict[str, str | None]]:
    """Take --config FILE, --preset NAME and --print_config [json|yaml] out of args (both `--x v` and `--x=v`)."""
    found: dict[str, str | None] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, has_value, value = arg.partition("=")
        if name not in _OPTIONS:
            rest.append(arg)
            i += 1
            continue
        if not has_value:
            following = args[i + 1] if i + 1 < len(args) else None
            if name == "--print_config":
                value = following if following in ("json", "yaml") else "json"
                i += 1 if following in ("json", "yaml") else 0
            elif following is None or following.startswith("--"):
                raise ValueError(f"{name} needs a value ({'a JSON or YAML file' if name == '--config' else 'a name'}).")
            else:
                value = following
                i += 1
        if name in found:
            raise ValueError(f"{name} is given twice. Keep one.")
        found[name] = value
        i += 1
    return rest, found


def _yaml_line(text: str, path: Sequence[str]) -> int | None:
    """The 1-based line of the key at `path` in a YAML document (None when it is not there)."""
    import yaml

    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
        if match is None:
            break
        line = match[0].start_mark.line + 1
        node = match[1]
    return line


def read_config_file(path: Path) -> tuple[dict[str, Any], str]:
    """The mapping in a JSON or YAML config file, and its text; a syntax error names the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"--config: '{path}' does not exist. Point it at a config.json or a YAML file.")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            # Refused before anything is built: a few lines of nested aliases ("billion laughs") share subtrees
            # that every later walk of the mapping expands, without bound.
            alias = next((event for event in yaml.parse(text) if isinstance(event, yaml.AliasEvent)), None)
            if alias is not None:
                raise ValueError(
                    f"--config: '{path}' line {alias.start_mark.line + 1} repeats a block by reference (YAML alias "
                    f"*{alias.anchor}); config files may not use aliases. Write the values out."
                )
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"--config: '{path}'{where} is not valid YAML ({getattr(err, 'problem', err)}).") from err
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config: '{path}' line {err.lineno} is not valid JSON ({err.msg}).") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"--config: '{path}' must hold a mapping of config fields (like a run's config.json).")
    return data, text


def _merge(base: dict[str, Any], update: dict[str, Any], tags: dict[str, str], prefix: str = "") -> dict[str, Any]:
    """`update` over `base`, recursively; a union block ({dotted path: its discriminator} in `tags`) whose tag
    changes is replaced, not merged, since the other class has other fields."""
    merged = dict(base)
    for key, value in update.items():
        old, path = merged.get(key), f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(value, dict):
            tag = tags.get(path)
            switched = tag is not None and tag in value and value[tag] != old.get(tag)
            merged[key] = dict(value) if switched else _merge(old, value, tags, f"{path}.")
        else:
            merged[key] = value
    return merged


def _file_path(loc: Sequence[Any], data: dict[str, Any]) -> list[str]:
    """The keys of a pydantic error location as they appear in the file: union member names are skipped, and a
    missing field (the last part) is named although the file lacks it."""
    path: list[str] = []
    node: Any = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        elif index == len(loc) - 1 and isinstance(part, str):
            path.append(part)
    return path


def validated(
    config_class: type[BaseModel], data: dict[str, Any], source: str, text: str | None, yaml_file: bool
) -> BaseModel:
    """`data` validated as `config_class`, strictly: a file's `"epochs": true` or `"drop_last": "yes"` is refused,
    not coerced to 1 or True (`_coerced`). The first problem is named by its key path (and line, for YAML)."""
    try:
        config = config_class.model_validate(data)
        coerced = _coerced(data, config)
        if coerced is not None:
            where, problem = coerced
            line = _yaml_line(text, where.split(".")) if (yaml_file and text is not None) else None
            raise ValueError(f"{source}: {where}{f' (line {line})' if line else ''}: {problem}. Fix it in the file.")
        return config
    except ValidationError as err:
        missing = [e for e in err.errors() if e["type"] == "missing" and len(e["loc"]) == 1]
        if missing and len(missing) == len(err.errors()):
            # Required fields the file leaves to the command line (--checkpoint_path ...): the base holds what the
            # file gives, each field validated on its own; the command line completes it and the whole is validated.
            return _partial(config_class, data, source, text, yaml_file)
        first = err.errors()[0]
        path = _file_path(first["loc"], data)
        line = _yaml_line(text, path) if (yaml_file and text is not None) else None
        where = ".".join(path) or "the top level"
        at = f" (line {line})" if line else ""
        from glovita.configs.extensions import unknown_tag

        if first["type"] == "union_tag_invalid":
            problem = f"{first['msg']}; {unknown_tag(err)}"
        elif first["type"] == "extra_forbidden":
            problem = "unknown key (a typo, or a field this GloViTa version does not have). Remove or rename it"
        else:
            problem = f"{first['msg']}. Fix it in the file, or override it on the command line"
        raise ValueError(f"{source}: {where}{at}: {problem}.") from err


_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _coerced(given: Any, value: Any, path: str = "") -> tuple[str, str] | None:
    """The first value of a config file that validation coerced to another kind (true -> 1, "yes" -> True,
    2.0 -> 2, "3" -> 3), as (key path, problem); None when every value kept its kind."""
    if isinstance(given, dict):
        for key, item in given.items():
            inner = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
            found = _coerced(item, inner, f"{path}{key}.") if inner is not None else None
            if found is not None:
                return found
        return None
    if isinstance(given, list) and isinstance(value, list | tuple) and len(given) == len(value):
        for index, (item, inner) in enumerate(zip(given, value, strict=True)):
            found = _coerced(item, inner, f"{path}{index}.")
            if found is not None:
                return found
        return None
    kind = type(value) if type(value) in _JSON_TYPES else None
    bad = (
        (isinstance(given, bool) and kind is not bool and kind is not None)
        or (isinstance(given, str) and kind in (bool, int, float))
        or (isinstance(given, float) and kind is int)
        or (isinstance(given, int) and not isinstance(given, bool) and kind is bool)
    )
    if not bad or kind is None:
        return None
    wrote = _JSON_TYPES.get(type(given), type(given).__name__)
    return (
        path.rstrip("."),
        f"{given!r} is {wrote}, but the field takes {_JSON_TYPES[kind]} (config files are read as written: nothing "
        "is coerced)",
    )


def _partial(
    config_class: type[BaseModel], data: dict[str, Any], source: str, text: str | None, yaml_file: bool
) -> BaseModel:
    """A base without its required fields (the command line gives them): every given field validated alone."""
    from typing import Annotated

    from pydantic import TypeAdapter

    values: dict[str, Any] = {}
    for name, value in data.items():
        field = config_class.model_fields[name]
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
            values[name] = adapter.validate_python(value)
            coerced = _coerced(value, values[name], f"{name}.")
            if coerced is not None:
                raise ValueError(f"{source}: {coerced[0]}: {coerced[1]}. Fix it in the file.")
        except ValidationError as err:
            line = _yaml_line(text, [name]) if (yaml_file and text is not None) else None
            at = f" (line {line})" if line else ""
            raise ValueError(f"{source}: {name}{at}: {err.errors()[0]['msg']}.") from err
    return config_class.model_construct(**values)


def _defaults(config_class: type[BaseModel]) -> dict[str, Any]:
    """The defaults of a config class as data (so a file may leave out a union block's tag), or {} when the class
    has required fields."""
    try:
        return config_class().model_dump(mode="json")
    except ValidationError:
        return {}


def base_config(config_class: type[BaseModel], options: dict[str, str | None]) -> BaseModel | None:
    """The preset (if any) with the config file (if any) over it, validated; None when neither is given."""
    preset_name, file_name = options.get("--preset"), options.get("--config")
    if preset_name is None and file_name is None:
        return None
    data = _defaults(config_class)
    if preset_name is not None:
        from glovita.configs.presets import preset_for

        data = {**data, **preset_for(config_class, preset_name)}
    if file_name is None:
        return validated(config_class, data, f"--preset {preset_name}", None, False)
    path = Path(file_name)
    content, text = read_config_file(path)
    content = _own_blocks(config_class, content)
    from glovita.cli.argv import find_union_fields

    tags = {union.path: union.discriminator for union in find_union_fields(config_class)}
    merged = _merge(data, content, tags)
    if isinstance(merged.get("training"), dict):
        # A resumed run's config.json says resume: true; whether to resume is the command line's choice.
        merged["training"] = {**merged["training"], "resume": False}
    return validated(config_class, merged, f"--config '{path}'", text, path.suffix.lower() in (".yaml", ".yml"))


def _own_blocks(config_class: type[BaseModel], content: dict[str, Any]) -> dict[str, Any]:
    """A run's config.json given to another command: the blocks that command has (data, model, ...); the
    training-only ones (peft, task, training, ...) are left out. Any other file is taken whole."""
    from glovita.configs.root import RootConfig

    if config_class is RootConfig or not set(content) <= set(RootConfig.model_fields):
        return content
    own = {key: value for key, value in content.items() if key in config_class.model_fields}
    return own if own else content


def print_config(config: BaseModel, style: str) -> None:
    """The effective config as JSON or YAML on stdout (what --config reads back)."""
    values = config.model_dump(mode="json")
    if style == "yaml":
        import yaml

        print(yaml.safe_dump(values, sort_keys=False), end="")
    else:
        print(json.dumps(values, indent=2))
