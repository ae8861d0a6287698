"""Any timm image model applied to every frame of a clip, with temporal pooling (avg or attention) for clip
labels, or per-frame features (B, T, D) for framewise heads."""

from pathlib import Path

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.img_encoder.timm_encoder import TimmImgEncoder
from glovita.models.video_encoder.clips import over_clips


class FramewiseImageEncoder(nn.Module):
    """clips (B, C, T, H, W) -> every frame through the image encoder -> (B, T, D) -> pooled over time (B, D)."""

    def __init__(
        self,
        name: str,
        pretrained: bool,
        pretrained_file: Path | None,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
        aggregation: str | None,
        temporal_pooling: str,
    ) -> None:
        super().__init__()
        self.frames = TimmImgEncoder(name, pretrained, pretrained_file, input_channels, model_kwargs, aggregation)
        self.out_dim = self.frames.out_dim
        self.temporal_pooling = temporal_pooling
        self.attention = (
            nn.Sequential(nn.Linear(self.out_dim, 128), nn.Tanh(), nn.Linear(128, 1))
            if temporal_pooling == "attention"
            else None
        )
        self.preprocessing: Preprocessing = self.frames.preprocessing

    def forward_frames(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W) -> per-frame features (B, T, D)."""
        batch, channels, frames = clips.shape[:3]
        images = clips.transpose(1, 2).reshape(batch * frames, channels, *clips.shape[3:])
        return self.frames(images).view(batch, frames, -1)

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_frames(clips)

    def _pooled(self, clips: torch.Tensor) -> torch.Tensor:
        features = self.forward_frames(clips)
        if self.attention is None:
            return features.mean(dim=1)
        weights = torch.softmax(self.attention(features).float(), dim=1).to(features.dtype)  # (B, T, 1)
        return (weights * features).sum(dim=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W) or (B, K, C, T, H, W) -> features (B, out_dim)."""
        return over_clips(self._pooled, clips)
