"""Hugging Face transformers vision backbones as encoders (built from a local directory, the local cache, or an
architecture name without weights; never downloaded)."""

import json
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.aggregation import TOKEN_ONLY_METHODS, aggregate, to_tokens
from glovita.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD

_PREFIX_TOKENS = {"vit": 1, "beit": 1, "data2vec-vision": 1, "dinov2": 1, "deit": 2, "vit_msn": 1, "vit_mae": 1}
"""Class (and distillation) tokens in front of the patch tokens of last_hidden_state, by model_type."""


def _model(auto_model, config, **kwargs):
    """The backbone; class-token models are built without their pooler (a dense layer GloViTa does not use,
    whose unused parameters would also trip DDP)."""
    if str(getattr(config, "model_type", "")) in _PREFIX_TOKENS:
        try:
            return auto_model(config=config, add_pooling_layer=False, **kwargs)
        except TypeError:
            pass
    return auto_model(config=config, **kwargs)


def _load(name: str, pretrained: bool, overrides: dict):
    """(config, model) of a local directory, a cached Hugging Face id, or an architecture name."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # GloViTa never downloads weights
    from transformers import CONFIG_MAPPING, AutoConfig, AutoModel

    local = Path(name).is_dir()
    if pretrained or local:
        try:
            config = AutoConfig.from_pretrained(name, local_files_only=True, **overrides)
            if not pretrained:
                return config, _model(AutoModel.from_config, config)
            loader = lambda **kwargs: AutoModel.from_pretrained(  # noqa: E731
                name, local_files_only=True, weights_only=True, **kwargs
            )
            return config, _model(loader, config)
        except pickle.UnpicklingError as err:  # torch's weights-only reader met Python objects in a .bin file
            raise ValueError(
                f"model.encoder.type={name!r}: its weights file holds pickled Python objects, and GloViTa reads only "
                "safetensors or tensors-only files (unpickling runs code). Convert it where you trust it, e.g. "
                "model.save_pretrained(folder, safe_serialization=True), and point --model.encoder.type at that folder."
            ) from err
        except OSError as err:
            raise FileNotFoundError(
                f"model.encoder: transformers model {name!r} is not on this machine ({str(err).splitlines()[0]}) "
                "and GloViTa never downloads weights. Pass a local model directory as --model.encoder.type, or "
                "--model.encoder.no_pretrained with an architecture name (vit, swin, convnext, dinov2, ...)."
            ) from err
    if name not in CONFIG_MAPPING:
        import difflib

        close = difflib.get_close_matches(name, list(CONFIG_MAPPING.keys()), n=3)
        raise ValueError(
            f"model.encoder.type={name!r} is neither a local model directory nor a transformers architecture "
            f"name. Closest: {', '.join(close) or 'none'}."
        )
    try:
        config = AutoConfig.for_model(name, **overrides)
    except Exception as err:  # transformers validates config fields with several error types
        raise ValueError(
            f"model.encoder.model_kwargs={overrides} do not fit transformers' {name!r} config: "
            f"{str(err).splitlines()[-1].strip()}"
        ) from err
    return config, _model(AutoModel.from_config, config)


def _preprocessing(name: str, config) -> Preprocessing:
    image_size = getattr(config, "image_size", 224)
    image_size = int(image_size[0] if isinstance(image_size, list | tuple) else image_size)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    processor = Path(name) / "preprocessor_config.json"
    if processor.is_file():
        values = json.loads(processor.read_text())
        mean = tuple(values.get("image_mean", mean))
        std = tuple(values.get("image_std", std))
    patch = getattr(config, "patch_size", None)
    return Preprocessing(
        image_size=image_size,
        resize_size=round(image_size * 256 / 224),
        mean=mean,
        std=std,
        interpolation="bicubic",
        patch_size=int(patch) if isinstance(patch, int) else None,
    )


class TransformerImgEncoder(nn.Module):
    """`AutoModel` of a vision architecture; last_hidden_state pooled to one vector.

    Unset aggregation takes the class token where the model has one, else its pooled output (Swin, ConvNeXt),
    else the patch-token mean.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
        aggregation: str | None,
    ) -> None:
        super().__init__()
        overrides = {"num_channels": input_channels, **model_kwargs}
        config, self.model = _load(name, pretrained, overrides)
        model_type = str(getattr(config, "model_type", ""))
        self.num_prefix_tokens = _PREFIX_TOKENS.get(model_type, 0) + int(getattr(config, "num_register_tokens", 0))
        if aggregation in TOKEN_ONLY_METHODS and self.num_prefix_tokens == 0:
            raise ValueError(
                f"model.feature_aggregation_method={aggregation!r} needs a class token, and transformers model "
                f"{name!r} ({model_type}) has none. Use avg, sum or mean_all, or leave it unset."
            )
        sizes = getattr(config, "hidden_sizes", None)
        self._width = int(sizes[-1] if sizes else config.hidden_size)
        self.aggregation = aggregation
        self.out_dim = 2 * self._width if aggregation == "joint" else self._width
        self.preprocessing = _preprocessing(name, config)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> last_hidden_state: tokens (B, N, D) (prefix tokens first), or the feature map
        (B, D, h, w) of convolutional architectures."""
        return self.model(pixel_values=images).last_hidden_state

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> features (B, out_dim)."""
        output = self.model(pixel_values=images)
        hidden = output.last_hidden_state
        if self.aggregation is not None:
            return aggregate(hidden, self.aggregation, self.num_prefix_tokens, self._width)
        if self.num_prefix_tokens:
            return hidden[:, 0]
        pooled = getattr(output, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        return to_tokens(hidden, self._width).mean(dim=1)
