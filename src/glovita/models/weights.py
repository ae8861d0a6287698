"""Local pretrained weights: a given file or the local caches, never a download."""

import pickle
import warnings
from pathlib import Path

import torch


def _fix_message(kind: str, name: str, looked: list[str]) -> str:
    places = "; ".join(looked) if looked else "no cache location"
    return (
        f"model.encoder: pretrained weights for {kind} model '{name}' are not on this machine (looked in: {places}) "
        "and GloViTa never downloads weights. Pass --model.encoder.pretrained_path FILE with a local weights file, "
        "or --model.encoder.no_pretrained to train from scratch."
    )


_DIRECTORY_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin", "model.pt")
"""Weights files looked for inside a Hugging Face-style model directory given as pretrained_path."""


def check_weights_file(path: Path) -> Path:
    """A user-given weights file must exist; a model directory stands for the weights file inside it."""
    if path.is_dir():
        for name in _DIRECTORY_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"model.encoder.pretrained_path: the folder '{path}' holds none of {', '.join(_DIRECTORY_FILES)}. "
            "Point it at the weights file itself."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"model.encoder.pretrained_path: '{path}' does not exist. Point it at a local weights file, "
            "or pass --model.encoder.no_pretrained."
        )
    return path


def find_timm_weights(name: str) -> Path:
    """The cached weights file of a timm model (Hugging Face cache or torch hub cache)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise ValueError(
            f"model.encoder.type={name!r}: timm has no pretrained weights for it. Use --model.encoder.no_pretrained."
        )
    looked = []
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        for filename in ((cfg.hf_hub_filename,) if cfg.hf_hub_filename else ()) + (
            "model.safetensors",
            "pytorch_model.bin",
        ):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return Path(found)
        looked.append(f"Hugging Face cache for {repo}")
    if cfg.url:
        url = cfg.url if isinstance(cfg.url, str) else cfg.url[0]
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        if path.is_file():
            return path
        looked.append(str(path))
    raise FileNotFoundError(_fix_message("timm", name, looked))


def find_torchvision_weights(name: str, weights) -> Path:
    """The cached file of torchvision's default weights for `name` (torch hub cache)."""
    if weights is None:
        raise ValueError(
            f"model.encoder.type={name!r}: torchvision has no pretrained weights for it. "
            "Use --model.encoder.no_pretrained."
        )
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise FileNotFoundError(_fix_message("torchvision", name, [str(path)]))
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_state_dict_file(path: Path, field: str = "model.encoder.pretrained_path") -> dict[str, torch.Tensor]:
    """The one reader for every weights file a user or a config names: .safetensors, or a torch file read with
    `weights_only=True` (a pickle that would run code is refused, never executed). {'state_dict': ...} and
    {'model': ...} wrappers are unwrapped. A file that cannot be read this way is a ValueError naming the file and
    `field`, the setting that named it."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises SafetensorError, OSError, ... for a damaged or fake file
            raise ValueError(
                f"{field}: '{path}' is not a readable .safetensors file ({_first_line(err)}). "
                f"Point {_flag(field)} at a valid weights file."
            ) from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing a file
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{field}: '{path}' was refused: it is not a plain weights file (GloViTa reads tensors only and never "
            "unpickles other objects, which could run code). Save the weights as a state dict "
            f"(torch.save(model.state_dict(), ...)) or as .safetensors and point {_flag(field)} at that file."
        ) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for files that are not checkpoints
        raise ValueError(
            f"{field}: cannot read '{path}' as a weights file ({_first_line(err)}). "
            f"Point {_flag(field)} at a .safetensors or torch weights file."
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{field}: '{path}' holds no state dict (a mapping of names to tensors).")
    return state


def _flag(field: str) -> str:
    return f"--{field}"


def is_glovita_checkpoint(path: Path) -> bool:
    """A checkpoint written by a GloViTa run (its model keys start with encoder. / head.)."""
    if path.suffix == ".safetensors":
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a torch file: the family's own loader reports it
        return False
    return isinstance(state, dict) and "glovita_version" in state


def _best_prefix(keys: list[str], wanted: set[str]) -> str:
    """The prefix whose removal makes the most checkpoint keys match the module's keys."""
    candidates = {""} | {key[: i + 1] for key in keys[:50] for i, char in enumerate(key) if char == "."}
    return max(sorted(candidates), key=lambda p: sum(k[len(p) :] in wanted for k in keys if k.startswith(p)))


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """First-layer weights (O, C, ...) for `channels` inputs: summed to 1 channel, tiled (and rescaled) to more."""
    source = weight.shape[1]
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // source)
    return weight.repeat(1, repeats, *([1] * (weight.ndim - 2)))[:, :channels] * (source / channels)


MIN_LOADED_FRACTION = 0.5
"""Below this share of an encoder's weights, a weights file is taken for another architecture's."""


def load_encoder_weights(module: torch.nn.Module, path: Path, allow_partial: bool = False) -> dict[str, list[str]]:
    """Load a state dict file (a GloViTa checkpoint included) into an encoder, as far as it fits.

    The key prefix (e.g. `encoder.` of a GloViTa checkpoint) is found automatically; input-layer weights with
    another channel count are adapted; keys of another shape (an old classifier) are dropped. Returns the
    report {adapted, dropped, missing, unexpected}; nothing matching at all is an error naming the file.
    """
    state = load_state_dict_file(check_weights_file(path))
    own = module.state_dict()
    prefix = _best_prefix(list(state), set(own))
    state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    matched = [k for k in state if k in own]
    if not matched:
        raise ValueError(
            f"model.encoder.pretrained_path: no key of '{path}' fits this encoder (e.g. {next(iter(state), '?')!r} "
            f"vs {next(iter(own), '?')!r}). Is it the weights of another architecture?"
        )
    report: dict[str, list[str]] = {"adapted": [], "dropped": []}
    for key in matched:
        value, target = state[key], own[key]
        if value.shape == target.shape:
            continue
        same_but_channels = (
            value.ndim >= 3 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]
        )
        if same_but_channels:
            state[key] = adapt_input_channels(value, target.shape[1])
            report["adapted"].append(key)
        else:
            del state[key]
            report["dropped"].append(key)
    loaded = len(matched) - len(report["dropped"])
    if loaded < MIN_LOADED_FRACTION * len(own) and not allow_partial:
        raise ValueError(
            f"model.encoder.pretrained_path: '{path}' fits only {loaded} of this encoder's {len(own)} weight tensors "
            f"({loaded / max(len(own), 1):.0%}; {len(report['dropped'])} have another shape). Is it the weights of "
            "another architecture? Pass --model.allow_partial_load to load what fits anyway."
        )
    result = module.load_state_dict(state, strict=False)
    report["missing"] = list(result.missing_keys)
    report["unexpected"] = list(result.unexpected_keys)
    return report


def describe_load(path: Path, report: dict[str, list[str]]) -> str:
    """One line about what a weights file changed (missing/unexpected keys named, up to four each)."""
    parts = []
    for kind in ("adapted", "dropped", "missing", "unexpected"):
        keys = report.get(kind, [])
        if keys:
            shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
            parts.append(f"{len(keys)} {kind} ({shown})")
    return f"Loaded encoder weights from {path}" + (f": {'; '.join(parts)}" if parts else ": every key matched")
