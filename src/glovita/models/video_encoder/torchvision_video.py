"""torchvision video classification models (r3d_18, mc3_18, r2plus1d_18, s3d, mvit_v1_b, mvit_v2_s, swin3d_t/s/b)
as encoders, classifier removed; weights from a local file or the torch hub cache, never downloaded."""

from pathlib import Path

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.img_encoder.torchvision_encoder import build_torchvision_model, replace_module
from glovita.models.preprocessing import torchvision_preprocessing
from glovita.models.video_encoder.clips import adapt_first_conv3d, over_clips


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

        self.model, default_weights = build_torchvision_model(
            name, models.video, "video", pretrained, pretrained_file, model_kwargs
        )
        if name == "s3d":  # classifier = Dropout + 1x1x1 Conv3d, averaged over (T, H, W) after it
            projection = self.model.get_submodule("classifier.1")
            assert isinstance(projection, nn.Conv3d)
            self.out_dim = projection.in_channels
            replace_module(self.model, "classifier.1", nn.Identity())
        else:
            parent, last = [(n, m) for n, m in self.model.named_modules() if isinstance(m, nn.Linear)][-1]
            self.out_dim = int(last.in_features)
            replace_module(self.model, parent, nn.Identity())
        if input_channels != 3:
            adapt_first_conv3d(self.model, input_channels, pretrained)
        self.preprocessing: Preprocessing = torchvision_preprocessing(default_weights)

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        raise ValueError("Unpooled features of torchvision video models are not available; use the pooled output.")

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W) or (B, K, C, T, H, W) -> features (B, out_dim)."""
        return over_clips(self.model, clips)
