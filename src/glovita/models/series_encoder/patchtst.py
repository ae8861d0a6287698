"""PatchTST (Nie et al. 2023) through Hugging Face transformers as a series encoder: each channel is cut into
patches that a transformer encodes on their own (channel independence); patch tokens are averaged per channel and
the channels concatenated, as transformers' PatchTSTForClassification pools."""

import torch
from torch import nn


class PatchtstSeriesEncoder(nn.Module):
    """series (B, C, T) with T = context_length -> (B, C x d_model)."""

    def __init__(
        self,
        input_channels: int,
        context_length: int,
        patch_length: int,
        patch_stride: int,
        d_model: int,
        num_hidden_layers: int,
        num_attention_heads: int,
        ffn_dim: int,
        dropout: float,
        scaling: str,
        norm_type: str = "batchnorm",
    ) -> None:
        super().__init__()
        from transformers import PatchTSTConfig, PatchTSTModel

        config = PatchTSTConfig(
            num_input_channels=input_channels,
            context_length=context_length,
            patch_length=patch_length,
            patch_stride=patch_stride,
            d_model=d_model,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            ffn_dim=ffn_dim,
            attention_dropout=dropout,
            ff_dropout=dropout,
            positional_dropout=dropout,
            scaling=None if scaling == "none" else scaling,
            do_mask_input=False,
            norm_type=norm_type,
        )
        self.model = PatchTSTModel(config)
        self.context_length = context_length
        self.out_dim = input_channels * d_model
        self.preprocessing = None

    def forward_features(self, series: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, C x patches, d_model)."""
        if series.shape[-1] != self.context_length:
            raise ValueError(
                f"model.encoder.context_length={self.context_length} but the series have {series.shape[-1]} time "
                f"steps. Set --model.encoder.context_length {series.shape[-1]} (or --data.series_length "
                f"{self.context_length} with --data.length_policy resample)."
            )
        hidden = self.model(past_values=series.transpose(1, 2)).last_hidden_state  # (B, C, patches, d_model)
        return hidden.flatten(1, 2)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        tokens = self.forward_features(series)
        batch, channels = series.shape[0], series.shape[1]
        return tokens.reshape(batch, channels, -1, tokens.shape[-1]).mean(dim=2).flatten(1)
