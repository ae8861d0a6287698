"""torchvision video classification models (r3d_18, mc3_18, r2plus1d_18, s3d, mvit_v1_b, mvit_v2_s, swin3d_t/s/b)
as encoders, classifier removed; weights from a local file or the torch hub cache, never downloaded."""

from pathlib import Path

import torch
from torch import nn

from glovita.models.preprocessing import PreprocessingDefaults, torchvision_preprocessing
from glovita.models.video_encoder.clips import adapt_first_conv3d, over_clips
from glovita.models.weights import check_weights_file, find_torchvision_weights, load_state_dict_file


class TorchvisionVideoEncoder(nn.Module):
    """A torchvision video model whose classifier is replaced by identity: clips -> pooled features (B, D)."""

    def __init__(
        self,
        name: str,
        pretrained: bool,
        pretrained_file: Path | None,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
    ) -> None:
        super().__init__()
        from torchvision import models

        available = models.list_models(module=models.video)
        if name not in available:
            import difflib

            close = difflib.get_close_matches(name, available, n=3)
            raise ValueError(
                f"model.encoder.type={name!r} is not a torchvision video model (choose from {', '.join(available)}). "
                f"Closest: {', '.join(close) or 'none'}."
            )
        default_weights = models.get_model_weights(name).DEFAULT
        self.model = models.get_model(name, weights=None, **model_kwargs)
        if pretrained:
            file = (
                check_weights_file(pretrained_file)
                if pretrained_file
                else find_torchvision_weights(name, default_weights)
            )
            field = "model.encoder.pretrained_path" if pretrained_file else "model.encoder.type"
            try:
                self.model.load_state_dict(load_state_dict_file(file, field))
            except RuntimeError as err:
                raise ValueError(
                    f"Weights file '{file}' does not fit torchvision video model {name!r} "
                    f"({' '.join(str(err).split())[:300]}). Is it the weights of another architecture?"
                ) from err
        if name == "s3d":  # classifier = Dropout + 1x1x1 Conv3d, averaged over (T, H, W) after it
            classifier = self.model.classifier
            self.out_dim = int(classifier[1].in_channels)
            classifier[1] = nn.Identity()
        else:
            parent, last = [(n, m) for n, m in self.model.named_modules() if isinstance(m, nn.Linear)][-1]
            self.out_dim = int(last.in_features)
            owner, _, child = parent.rpartition(".")
            setattr(self.model.get_submodule(owner) if owner else self.model, child, nn.Identity())
        if input_channels != 3:
            adapt_first_conv3d(self.model, input_channels, pretrained)
        self.preprocessing: PreprocessingDefaults = torchvision_preprocessing(default_weights)

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        raise ValueError("Unpooled features of torchvision video models are not available; use the pooled output.")

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W) or (B, K, C, T, H, W) -> features (B, out_dim)."""
        return over_clips(self.model, clips)
