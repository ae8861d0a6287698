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


class PrecomputedEncoderConfig(GlovitaConfig):
    """Identity encoder for precomputed features (--data.dataset precomputed_features)."""

    encoder_type: Literal["precomputed"] = "precomputed"
    """Encoder family tag."""
    feature_dim: int = Field(gt=0)
    """Dimension D of the stored features; must match the files."""


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


class AbmilHeadConfig(GlovitaConfig):
    """Gated-attention MIL (Ilse et al., 2018): attention-weighted mean of instance embeddings, then a classifier."""

    head_type: Literal["abmil"] = "abmil"
    """Head tag."""
    hidden_dim: int = Field(256, gt=0)
    """Width L of the instance embedding (Linear + ReLU before attention)."""
    attention_dim: int = Field(128, gt=0)
    """Width of the attention network."""
    gated: bool = True
    """Gated attention (tanh * sigmoid); off gives plain tanh attention."""
    dropout: float = Field(0.25, ge=0, lt=1)
    """Dropout in the embedding and attention networks."""


class ClamHeadConfig(GlovitaConfig):
    """CLAM (Lu et al., 2021): gated attention pooling plus an instance-level clustering loss."""

    head_type: Literal["clam"] = "clam"
    """Head tag."""
    variant: Literal["sb", "mb"] = "sb"
    """sb: one attention branch; mb: one attention branch and classifier per class."""
    size: Literal["small", "big"] = "small"
    """Network widths after the input: small = 512/256, big = 512/384 (as in the reference implementation)."""
    dropout: float = Field(0.25, ge=0, lt=1)
    """Dropout in the embedding and attention networks."""
    instance_eval: bool = False
    """Add the instance-level clustering loss (pseudo-labels for the top/bottom attended instances)."""
    k_sample: int = Field(8, gt=0)
    """Instances per bag taken from the top and from the bottom of the attention (clamped to the bag size)."""
    bag_weight: float = Field(0.7, ge=0, le=1)
    """Weight of the bag loss; the instance loss gets 1 - bag_weight."""
    instance_loss: Literal["ce", "svm"] = "ce"
    """Instance loss: cross-entropy or smooth top-1 SVM (Berrada et al., 2018)."""
    subtyping: bool = False
    """Also push the top instances of the other classes' branches towards 'negative' (mutually exclusive subtypes)."""


EncoderConfig = choice(
    TimmEncoderConfig, TorchvisionEncoderConfig, PrecomputedEncoderConfig, discriminator="encoder_type"
)
HeadConfig = choice(
    ClassificationHeadConfig, RegressionHeadConfig, AbmilHeadConfig, ClamHeadConfig, discriminator="head_type"
)
BAG_HEADS = ("abmil", "clam")
"""Heads that take bags of instances (B, N, D) with a mask instead of one vector per sample."""


class ModelConfig(GlovitaConfig):
    """Encoder, optional feature aggregation, head."""

    encoder: EncoderConfig = TimmEncoderConfig()
    """Image encoder."""
    head: HeadConfig = ClassificationHeadConfig()
    """Prediction head (owns its loss)."""
    feature_aggregation_method: AggregationMethod | None = None
    """Pooling of token/feature-map outputs (timm encoders); unset uses the encoder's own pooling."""
