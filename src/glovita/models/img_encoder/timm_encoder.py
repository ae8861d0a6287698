"""timm image models as encoders (classifier removed)."""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.aggregation import TOKEN_ONLY_METHODS, aggregate
from glovita.models.preprocessing import timm_preprocessing
from glovita.models.saliency import CamLayer
from glovita.models.weights import check_weights_file, find_timm_weights, load_state_dict_file


class TimmImgEncoder(nn.Module):
    """A timm model without its classifier.

    Args:
        name: timm model name, optionally with a pretrained tag (resnet50.a1_in1k).
        pretrained_file: local weights; with `pretrained` and no file, the local cache is searched.
        aggregation: pooling of forward_features output; None keeps the model's own pooling.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool,
        pretrained_file: Path | None,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
        aggregation: str | None,
    ) -> None:
        super().__init__()
        import timm

        if not timm.is_model(name.split(".")[0]):
            import difflib

            close = difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=3)
            raise ValueError(
                f"model.encoder.type={name!r} is not a timm model. Closest: {', '.join(close) or 'none'}. "
                "See timm.list_models()."
            )
        kwargs: dict = dict(model_kwargs)
        if pretrained:
            # GloViTa reads the file (safely: tensors only) and hands timm the state dict, so timm's own filters
            # (classifier dropped, input channels adapted, position embeddings resized) apply without timm ever
            # unpickling a file itself.
            file = check_weights_file(pretrained_file) if pretrained_file else find_timm_weights(name)
            field = "model.encoder.pretrained_path" if pretrained_file else "model.encoder.type"
            kwargs["pretrained_cfg_overlay"] = {"state_dict": load_state_dict_file(file, field), "file": None}
        # timm models carry their own attributes (num_features, pretrained_cfg, forward_features, ...).
        try:
            model: Any = timm.create_model(
                name, pretrained=pretrained, num_classes=0, in_chans=input_channels, **kwargs
            )
        except RuntimeError as err:  # load_state_dict: missing / unexpected keys, size mismatches
            if not pretrained or "state_dict" not in str(err):
                raise
            detail = " ".join(str(err).split())[:300]
            raise ValueError(
                f"model.encoder.pretrained_path: the weights do not fit timm model {name!r} ({detail}). Is it the "
                "weights of another architecture? Set --model.encoder.type to the model they belong to."
            ) from err
        if isinstance(getattr(model, "pretrained_cfg", None), dict):
            model.pretrained_cfg.pop("state_dict", None)  # the weights are in the model; keep no second copy
        self.model = model
        self.name = name
        self._input_channels = input_channels
        self._model_kwargs = dict(model_kwargs)
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))
        self.aggregation = aggregation
        if aggregation in TOKEN_ONLY_METHODS and self.num_prefix_tokens == 0:
            raise ValueError(
                f"model.feature_aggregation_method={aggregation!r} needs a class token, and timm model {name!r} "
                "has none. Use avg, sum or mean_all, or leave it unset."
            )
        width = int(model.num_features)
        if aggregation is None:
            self.out_dim = int(getattr(model, "head_hidden_size", None) or width)
        else:
            self.out_dim = 2 * width if aggregation == "joint" else width
        self._width = width
        self.preprocessing: Preprocessing = timm_preprocessing(self.model)

    def as_timm_classifier(self, linear: nn.Linear) -> tuple[Any, dict[str, Any]]:
        """(a plain timm model of this architecture with these weights and `linear` as its classifier, the
        create_model arguments that rebuild it): what `glovita_export --format timm` saves. Refused when this encoder
        pools otherwise than the timm model's own head."""
        import timm

        if self.aggregation is not None:
            raise ValueError(
                f"model.feature_aggregation_method={self.aggregation!r} pools otherwise than timm model "
                f"{self.name!r}'s own head, so a timm model cannot hold this run. Use --format onnx, torchscript or "
                "safetensors."
            )
        kwargs: dict[str, Any] = {"num_classes": linear.out_features, "in_chans": self._input_channels,
                                  **self._model_kwargs}  # fmt: skip
        plain: Any = timm.create_model(self.name.split(".")[0], pretrained=False, **kwargs)
        classifier = plain.get_classifier()
        prefix = next(name for name, module in plain.named_modules() if module is classifier)
        plain.load_state_dict(
            {**self.model.state_dict(), f"{prefix}.weight": linear.weight, f"{prefix}.bias": linear.bias}
        )
        return plain, {"in_chans": self._input_channels, **self._model_kwargs}

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> the unpooled output: tokens (B, N, D) of ViTs (prefix tokens first) or feature
        maps (B, D, h, w) of CNNs."""
        return self.model.forward_features(images)

    @property
    def pyramid_channels(self) -> list[int]:
        """Channels of pyramid()'s entries: the input's, then each level's (timm's feature_info)."""
        levels = self._pyramid_levels()
        return [self._input_channels, *(int(self.model.feature_info[i]["num_chs"]) for i in levels)]

    def _pyramid_levels(self) -> list[int]:
        """feature_info indices of the levels a decoder takes: the deepest one of each reduction."""
        info = getattr(self.model, "feature_info", None)
        if not info or not hasattr(self.model, "forward_intermediates"):
            raise ValueError(
                f"timm model {self.name!r} does not give its intermediate feature maps, which a dense head decodes. "
                "Choose a CNN such as resnet18, resnet34 or convnext_tiny."
            )
        deepest = {int(level["reduction"]): index for index, level in enumerate(info)}
        return [deepest[reduction] for reduction in sorted(deepest)]

    def pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (B, C, H, W) -> [images, then the feature maps (B, D_l, H / r_l, W / r_l) of increasing reduction
        r_l]: what a U-Net decoder takes."""
        levels = self.model.forward_intermediates(images, indices=self._pyramid_levels(), intermediates_only=True)
        return [images, *levels]

    def cam_layer(self, name: str | None) -> CamLayer:
        """The layer a CAM weighs: `name` (a module of the timm model), or its last feature stage (feature_info; a
        class-token ViT: the last block's norm1). ViT tokens are reshaped on the patch grid (prefix tokens dropped),
        channels-last stages permuted."""
        stages = [(str(level["module"]), int(level["reduction"])) for level in getattr(self.model, "feature_info", [])]
        chosen = name if name is not None else (stages[-1][0] if stages else None)
        modules = dict(self.model.named_modules())
        if name is None and self.num_prefix_tokens and f"{chosen}.norm1" in modules:
            # A class-token ViT's last block changes no patch token the pooled token reads, so its CAM would be
            # zero: take the tokens entering that block's attention (as pytorch-grad-cam advises).
            chosen = f"{chosen}.norm1"
        if chosen is None or chosen not in modules:
            import difflib

            known = [stage for stage, _ in stages] or [n for n in modules if n][-5:]
            close = difflib.get_close_matches(str(chosen), list(modules), n=1)
            raise ValueError(
                f"training.step.target_layer={chosen!r} is not a module of timm model {self.name!r}. Its feature "
                f"stages: {', '.join(known)}" + (f"; closest: {close[0]}." if close else ".")
            )
        depth = next((i for i, (stage, _) in enumerate(stages) if f"{chosen}.".startswith(f"{stage}.")), len(stages))
        finer = [stages[i] for i in range(depth - 1, -1, -1)]
        prefix = self.num_prefix_tokens
        channels_last = str(getattr(self.model, "output_fmt", "NCHW")) == "NHWC"
        patch_embed: Any = getattr(self.model, "patch_embed", None)

        def to_map(output: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
            if output.dim() == 3:  # tokens (B, N, D) on the patch grid
                tokens = output[:, prefix:]
                grid = patch_embed.dynamic_feat_size(size) if hasattr(patch_embed, "dynamic_feat_size") else None
                if grid is None or grid[0] * grid[1] != tokens.shape[1]:
                    grid = tuple(patch_embed.grid_size) if patch_embed is not None else (0, 0)
                if grid[0] * grid[1] != tokens.shape[1]:
                    raise ValueError(f"Layer {chosen!r} of {self.name!r} gives {tokens.shape[1]} tokens, not a patch "
                                     "grid; choose a block of the encoder (training.step.target_layer).")  # fmt: skip
                return tokens.reshape(len(tokens), grid[0], grid[1], -1).permute(0, 3, 1, 2)
            if output.dim() != 4:
                raise ValueError(f"Layer {chosen!r} of {self.name!r} gives {output.dim()}-D outputs, not feature "
                                 "maps; choose a feature stage (training.step.target_layer).")  # fmt: skip
            return output.permute(0, 3, 1, 2) if channels_last else output

        return CamLayer(chosen, modules[chosen], to_map, finer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> features (B, out_dim)."""
        if self.aggregation is None:
            return self.model(images)
        return aggregate(self.forward_features(images), self.aggregation, self.num_prefix_tokens, self._width)
