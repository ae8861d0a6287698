"""Model composition: encoder (by `encoder_type`), head (by `head_type`) and feature aggregation."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig, choice

ModelKwargs = dict[str, int | float | bool | str]
AggregationMethod = Literal["cls_token", "avg", "sum", "mean_all", "joint"]


class TimmEncoderConfig(GlovitaConfig):
    """Any timm image model as encoder (classifier removed)."""

    encoder_type: Literal["timm"] = "timm"
    """Encoder family tag."""
    type: str = "resnet18"
    """timm model name, optionally with a pretrained tag (e.g. resnet50.a1_in1k, vit_small_patch16_224)."""
    pretrained: bool = True
    """Load pretrained weights from pretrained_path or the local cache (never downloaded)."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .pth, .pt, .bin) to load instead of the cached one."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder (1 grayscale, 3 RGB, 4 RGBA); images are converted to this."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for timm.create_model (e.g. drop_path_rate 0.1)."""


class TorchvisionEncoderConfig(GlovitaConfig):
    """A torchvision classification model as encoder (last linear layer removed)."""

    encoder_type: Literal["torchvision"] = "torchvision"
    """Encoder family tag."""
    type: str = "resnet18"
    """torchvision model name as in torchvision.models.list_models() (e.g. resnet18, efficientnet_b0)."""
    pretrained: bool = True
    """Load the default torchvision weights from pretrained_path or the torch hub cache (never downloaded)."""
    pretrained_path: Path | None = None
    """Local state-dict file to load instead of the cached weights."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder; other than 3 replaces the first convolution (untrained)."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for the torchvision model builder."""


class ClassificationHeadConfig(GlovitaConfig):
    """Linear (or one-hidden-layer MLP) classifier trained with cross-entropy."""

    head_type: Literal["classification"] = "classification"
    """Head tag."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the pooled features before the classifier."""
    hidden_dim: int | None = Field(None, gt=0)
    """Width of an optional hidden layer (GELU); unset gives a linear classifier."""


class RegressionHeadConfig(GlovitaConfig):
    """Linear (or one-hidden-layer MLP) regressor with num_classes outputs."""

    head_type: Literal["regression"] = "regression"
    """Head tag."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the pooled features before the regressor."""
    hidden_dim: int | None = Field(None, gt=0)
    """Width of an optional hidden layer (GELU); unset gives a linear regressor."""
    loss: Literal["mse", "l1", "smooth_l1"] = "mse"
    """Regression loss."""


EncoderConfig = choice(TimmEncoderConfig, TorchvisionEncoderConfig, discriminator="encoder_type")
HeadConfig = choice(ClassificationHeadConfig, RegressionHeadConfig, discriminator="head_type")


class ModelConfig(GlovitaConfig):
    """Encoder, optional feature aggregation, head."""

    encoder: EncoderConfig = TimmEncoderConfig()
    """Image encoder."""
    head: HeadConfig = ClassificationHeadConfig()
    """Prediction head (owns its loss)."""
    feature_aggregation_method: AggregationMethod | None = None
    """Pooling of token/feature-map outputs (timm encoders); unset uses the encoder's own pooling."""
