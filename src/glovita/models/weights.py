"""Local pretrained weights: a given file or the local caches, never a download."""

from pathlib import Path

import torch


def _fix_message(kind: str, name: str, looked: list[str]) -> str:
    places = "; ".join(looked) if looked else "no cache location"
    return (
        f"model.encoder: pretrained weights for {kind} model '{name}' are not on this machine (looked in: {places}) "
        "and GloViTa never downloads weights. Pass --model.encoder.pretrained_path FILE with a local weights file, "
        "or --model.encoder.no_pretrained to train from scratch."
    )


def check_weights_file(path: Path) -> Path:
    """A user-given weights file must exist."""
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
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
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


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a torch file (weights_only), unwrapping {'state_dict': ...}."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for non-checkpoint files
        raise ValueError(f"model.encoder.pretrained_path: cannot read '{path}' as a weights file ({err}).") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"model.encoder.pretrained_path: '{path}' holds no state dict.")
    return state
