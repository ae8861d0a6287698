"""nnU-Net's residual encoder and the Primus transformer (dynamic-network-architectures) as encoders.

Both end in a feature map or tokens that are pooled to one vector per sample: average (default) or sum;
the class-token methods are refused because neither has a class token.
"""

import math

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.aggregation import TOKEN_ONLY_METHODS
from glovita.models.saliency import CamLayer

_GENERIC = Preprocessing(224, 256, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear", None)
"""From-scratch defaults: no pretrained statistics exist for these families."""


def _pool(tokens: torch.Tensor, method: str | None) -> torch.Tensor:
    """(B, N, D) -> (B, D): mean (avg, mean_all, unset) or sum."""
    return tokens.sum(dim=1) if method == "sum" else tokens.mean(dim=1)


def _refuse_token_methods(method: str | None, family: str) -> None:
    if method in TOKEN_ONLY_METHODS:
        raise ValueError(
            f"model.feature_aggregation_method={method!r} needs a class token, and {family} has none. "
            "Use avg, sum or mean_all, or leave it unset."
        )


class ResidualImgEncoder(nn.Module):
    """nnU-Net ResidualEncoder (stem + residual stages), 2D or 3D; the last stage's map is pooled."""

    def __init__(
        self,
        spatial_dims: int,
        input_channels: int,
        features_per_stage: tuple[int, ...],
        blocks_per_stage: tuple[int, ...],
        strides: tuple[int, ...],
        kernel_size: int,
        norm: str,
        model_kwargs: dict,
        aggregation: str | None,
    ) -> None:
        super().__init__()
        from dynamic_network_architectures.building_blocks.residual_encoders import ResidualEncoder

        _refuse_token_methods(aggregation, "the residual encoder")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norms = {
            ("instance", 2): nn.InstanceNorm2d,
            ("instance", 3): nn.InstanceNorm3d,
            ("batch", 2): nn.BatchNorm2d,
            ("batch", 3): nn.BatchNorm3d,
        }
        self.net = ResidualEncoder(
            input_channels=input_channels,
            n_stages=len(features_per_stage),
            features_per_stage=list(features_per_stage),
            conv_op=conv,
            kernel_sizes=kernel_size,
            strides=list(strides),
            n_blocks_per_stage=list(blocks_per_stage),
            conv_bias=True,
            norm_op=norms[(norm, spatial_dims)],
            norm_op_kwargs={"eps": 1e-5, "affine": True},
            nonlin=nn.LeakyReLU,
            nonlin_kwargs={"inplace": True},
            return_skips=True,
            **model_kwargs,
        )
        self.spatial_dims = spatial_dims
        self.pyramid_channels = [input_channels, *(int(f) for f in features_per_stage)]
        self.strides = [int(v) for v in strides]
        self.aggregation = aggregation
        self.out_dim = int(features_per_stage[-1])
        self.preprocessing = _GENERIC

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, C, D, H, W) -> the last stage's map (B, out_dim, h, w) or (B, out_dim, d, h, w)."""
        return self.forward_all(images)[-1]

    def pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[images, then every stage's map]: what the nnU-Net decoder takes (its skips); the input's size must be
        divisible by the product of the strides (the decoder's transposed convolutions undo them exactly)."""
        total = math.prod(self.strides)
        if any(n % total for n in images.shape[2:]):
            raise ValueError(
                f"An input of size {tuple(images.shape[2:])} reaches nnU-Net's U-Net decoder, which takes sizes "
                f"divisible by {total} (model.encoder.strides={tuple(self.strides)}). Set data.augmentation.image_size "
                "or data.volume_size to a multiple."
            )
        return [images, *self.forward_all(images)]

    def forward_all(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's map, the first stage's first."""
        if images.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"model.encoder.spatial_dims={self.spatial_dims} but the input has shape {tuple(images.shape)}."
            )
        return list(self.net(images))

    def cam_layer(self, name: str | None) -> CamLayer:
        """The stage a CAM weighs: `name` (net.stages.K), or the last stage; its maps pass through as they are."""
        stages = [(f"net.stages.{i}", math.prod(self.strides[: i + 1])) for i in range(len(self.strides))]
        chosen = name if name is not None else stages[-1][0]
        modules = dict(self.named_modules())
        if chosen not in modules:
            raise ValueError(
                f"training.step.target_layer={chosen!r} is not a module of the residual encoder. Its stages: "
                f"{', '.join(stage for stage, _ in stages)}."
            )
        depth = next((i for i, (stage, _) in enumerate(stages) if stage == chosen), len(stages))
        finer = [stages[i] for i in range(depth - 1, -1, -1)]
        return CamLayer(chosen, modules[chosen], lambda output, _: output, finer)

    def unet_decoder(self, num_classes: int) -> nn.Module:
        """nnU-Net's U-Net decoder for this encoder (dynamic-network-architectures' UNetDecoder: transposed
        convolutions back through the stages, one convolution per stage, no deep supervision)."""
        from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder

        return UNetDecoder(self.net, num_classes, n_conv_per_stage=1, deep_supervision=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, C, D, H, W) -> (B, out_dim)."""
        return _pool(self.forward_features(images).flatten(2).transpose(1, 2), self.aggregation)


class PrimusImgEncoder(nn.Module):
    """Primus (3D): patch embedding + EVA transformer blocks; the decoder of the segmentation net is dropped."""

    def __init__(
        self,
        input_channels: int,
        input_shape: tuple[int, int, int],
        patch_size: tuple[int, int, int],
        embed_dim: int,
        depth: int,
        num_heads: int,
        num_register_tokens: int,
        model_kwargs: dict,
        aggregation: str | None,
    ) -> None:
        super().__init__()
        from dynamic_network_architectures.architectures.primus import Primus

        _refuse_token_methods(aggregation, "Primus")
        net = Primus(
            input_channels=input_channels,
            embed_dim=embed_dim,
            patch_embed_size=patch_size,
            num_classes=1,
            eva_depth=depth,
            eva_numheads=num_heads,
            input_shape=input_shape,
            num_register_tokens=num_register_tokens,
            **model_kwargs,
        )
        self.down_projection = net.down_projection
        self.eva = net.eva
        self.register_tokens = net.register_tokens
        self.aggregation = aggregation
        self.out_dim = embed_dim
        self.input_shape = tuple(input_shape)
        size = int(max(input_shape))
        self.preprocessing = Preprocessing(size, size, (0.5,), (0.5,), "trilinear", int(patch_size[0]))

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> (B, embed_dim)."""
        return _pool(self.forward_features(volumes), self.aggregation)

    def forward_features(self, volumes: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> patch tokens (B, N, embed_dim) after the transformer blocks (registers dropped)."""
        if volumes.ndim != 5 or tuple(volumes.shape[2:]) != self.input_shape:
            raise ValueError(
                f"Primus was built for volumes of shape (B, C, {', '.join(map(str, self.input_shape))}) "
                f"(model.encoder.input_shape); got {tuple(volumes.shape)}."
            )
        tokens = self.down_projection(volumes).flatten(2).transpose(1, 2)
        if self.register_tokens is not None:
            tokens = torch.cat([self.register_tokens.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens, _ = self.eva(tokens)
        if self.register_tokens is not None:
            tokens = tokens[:, self.register_tokens.shape[1] :]
        return tokens
