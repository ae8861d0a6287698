"""Model composition: encoder (by `encoder_type`), head (by `head_type`) and feature aggregation."""

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig, choice
from glovita.configs.fields import SubtaskName, TaskName

ModelKwargs = dict[str, int | float | bool | str]
AggregationMethod = Literal["cls_token", "avg", "sum", "mean_all", "joint"]
HeadInput = Literal["vector", "bag", "frames", "pyramid"]
"""What a head takes: a pooled vector per sample, a bag of instance features, per-frame features, or the encoder's
multi-scale feature maps (dense heads)."""


class TimmEncoderConfig(GlovitaConfig):
    """Any timm image model as encoder (classifier removed)."""

    encoder_type: Literal["timm"] = "timm"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Inputs it takes: 2D images (B, C, H, W)."""
    pools_tokens: ClassVar[bool] = True
    """It returns tokens or feature maps that feature_aggregation_method can pool."""
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
    spatial_dims: ClassVar[int | None] = 2
    """Inputs it takes: 2D images (B, C, H, W)."""
    pools_tokens: ClassVar[bool] = False
    """It returns pooled vectors only (feature_aggregation_method does not apply)."""
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


class _DinoFields(GlovitaConfig):
    """Fields the DINO ViT families share (built through timm)."""

    spatial_dims: ClassVar[int | None] = 2
    """Inputs it takes: 2D images (B, C, H, W)."""
    pools_tokens: ClassVar[bool] = True
    """It returns tokens or feature maps that feature_aggregation_method can pool."""
    pretrained: bool = True
    """Load pretrained weights from pretrained_path or the local cache (never downloaded)."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .pth, .pt, or a GloViTa checkpoint) to load instead of the cached one."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder; pretrained RGB patch embeddings are adapted to other counts."""
    image_size: int = Field(224, gt=0)
    """Default input size (a multiple of the patch size); other sizes work too (position embeddings are
    interpolated, borders padded to whole patches)."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for timm.create_model (e.g. drop_path_rate 0.1)."""


class Dinov2EncoderConfig(_DinoFields):
    """DINOv2 ViT (patch 14; the reg4 models add four register tokens), through timm."""

    encoder_type: Literal["dinov2"] = "dinov2"
    """Encoder family tag."""
    type: str = "vit_small_patch14_reg4_dinov2.lvd142m"
    """timm DINOv2 model name (vit_{small,base,large,giant}_patch14[_reg4]_dinov2[.lvd142m])."""


class Dinov3EncoderConfig(_DinoFields):
    """DINOv3 ViT (patch 16, four register tokens, RoPE), through timm."""

    encoder_type: Literal["dinov3"] = "dinov3"
    """Encoder family tag."""
    type: str = "vit_small_patch16_dinov3.lvd1689m"
    """timm DINOv3 model name (vit_{small,small_plus,base,large,huge_plus,7b}_patch16_dinov3[.lvd1689m])."""


class TransformerEncoderConfig(GlovitaConfig):
    """A Hugging Face transformers vision backbone (ViT, DeiT, Swin, ConvNeXt, DINOv2, BEiT, ...)."""

    encoder_type: Literal["transformer"] = "transformer"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Inputs it takes: 2D images (B, C, H, W)."""
    pools_tokens: ClassVar[bool] = True
    """It returns tokens or feature maps that feature_aggregation_method can pool."""
    type: str = "vit"
    """A local model directory (config.json, and weights when pretrained), a Hugging Face id in the local cache,
    or an architecture name (model_type such as vit, swin, convnext, dinov2) to build without weights."""
    pretrained: bool = True
    """Load the weights of `type` (a local directory or a cached Hugging Face id; never downloaded)."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .bin, .pt, or a GloViTa checkpoint) loaded into the built model."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder (num_channels of the config)."""
    model_kwargs: ModelKwargs = {}
    """Config overrides (e.g. hidden_size 192, num_hidden_layers 6, image_size 224, patch_size 16)."""


class ResidualEncoderConfig(GlovitaConfig):
    """nnU-Net's residual encoder (dynamic-network-architectures), 2D or 3D, pooled to one vector."""

    encoder_type: Literal["residual_encoder"] = "residual_encoder"
    """Encoder family tag."""
    pools_tokens: ClassVar[bool] = True
    """It returns feature maps that feature_aggregation_method can pool."""
    spatial_dims: Literal[2, 3] = 2
    """2 for images (B, C, H, W), 3 for volumes (B, C, D, H, W)."""
    features_per_stage: tuple[int, ...] = (32, 64, 128, 256)
    """Channels of each resolution stage."""
    blocks_per_stage: tuple[int, ...] = (1, 2, 2, 2)
    """Residual blocks of each stage."""
    strides: tuple[int, ...] = (1, 2, 2, 2)
    """Downsampling stride of each stage."""
    kernel_size: int = Field(3, gt=0)
    """Convolution kernel size."""
    norm: Literal["instance", "batch"] = "instance"
    """Normalisation (nnU-Net uses instance norm)."""
    pretrained: bool = False
    """Load weights from pretrained_path (there is no public model zoo to cache from)."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .pt, an nnU-Net or GloViTa checkpoint) for the encoder."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for ResidualEncoder (e.g. stochastic_depth_p 0.1, squeeze_excitation true)."""

    @model_validator(mode="after")
    def _check_stages(self) -> "ResidualEncoderConfig":
        lengths = {len(self.features_per_stage), len(self.blocks_per_stage), len(self.strides)}
        if len(lengths) != 1:
            raise ValueError(
                "model.encoder.features_per_stage, blocks_per_stage and strides need one entry per stage, got "
                f"{len(self.features_per_stage)}, {len(self.blocks_per_stage)} and {len(self.strides)}."
            )
        return self


class PrimusEncoderConfig(GlovitaConfig):
    """The Primus 3D transformer encoder (patch embedding + EVA blocks, dynamic-network-architectures)."""

    encoder_type: Literal["primus"] = "primus"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 3
    """Inputs it takes: 3D volumes (B, C, D, H, W)."""
    pools_tokens: ClassVar[bool] = True
    """It returns tokens or feature maps that feature_aggregation_method can pool."""
    input_shape: tuple[int, int, int] = (64, 64, 64)
    """Volume size (D, H, W) the rotary/position embeddings are built for; a multiple of patch_size."""
    patch_size: tuple[int, int, int] = (8, 8, 8)
    """Patch embedding size."""
    embed_dim: int = Field(192, gt=0)
    """Token width (Primus-S 396, -B 792, -M 864, -L 1056); divisible by 1.5 x num_heads (rotary embedding)."""
    depth: int = Field(6, gt=0)
    """Number of EVA blocks."""
    num_heads: int = Field(4, gt=0)
    """Attention heads."""
    num_register_tokens: int = Field(0, ge=0)
    """Register tokens prepended to the patch tokens."""
    pretrained: bool = False
    """Load weights from pretrained_path."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .pt, or a GloViTa checkpoint) for the encoder."""
    input_channels: int = Field(1, ge=1)
    """Channels of the volumes."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for the EVA blocks (e.g. drop_path_rate 0.1)."""

    @model_validator(mode="after")
    def _check_shape(self) -> "PrimusEncoderConfig":
        if any(size % patch for size, patch in zip(self.input_shape, self.patch_size, strict=True)):
            raise ValueError(
                f"model.encoder.input_shape={self.input_shape} must be a multiple of patch_size={self.patch_size}."
            )
        if (2 * self.embed_dim) % (3 * self.num_heads):
            raise ValueError(
                f"model.encoder.embed_dim={self.embed_dim} must be divisible by 1.5 x num_heads={self.num_heads} "
                "(Primus' rotary position embedding). E.g. embed_dim 192 with num_heads 4, or 396 with 6."
            )
        return self


class SeriesCnnEncoderConfig(GlovitaConfig):
    """The standard deep time-series classifiers (FCN, ResNet of Wang et al. 2017; InceptionTime of Ismail Fawaz et
    al. 2020), trained from scratch on series (B, C, T)."""

    encoder_type: Literal["series_cnn"] = "series_cnn"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 1
    """Inputs it takes: series (B, C, T) with one time axis."""
    pools_tokens: ClassVar[bool] = False
    """It returns vectors averaged over time (feature_aggregation_method does not apply)."""
    type: Literal["inception_time", "resnet", "fcn"] = "inception_time"
    """Network: inception_time, resnet or fcn."""
    input_channels: int = Field(1, gt=0)
    """Channels (variables) of each series; must match the data."""


class PatchtstEncoderConfig(GlovitaConfig):
    """PatchTST (Nie et al. 2023) from Hugging Face transformers, trained from scratch on series (B, C, T) of
    context_length steps: channel-independent patch transformers, patch tokens averaged per channel."""

    encoder_type: Literal["patchtst"] = "patchtst"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 1
    """Inputs it takes: series (B, C, T) with one time axis."""
    pools_tokens: ClassVar[bool] = False
    """It returns its own pooled vectors (feature_aggregation_method does not apply)."""
    input_channels: int = Field(1, gt=0)
    """Channels (variables) of each series; must match the data."""
    context_length: int = Field(gt=1)
    """Time steps of every series (the data's series_length); must be set."""
    patch_length: int = Field(16, gt=0)
    """Time steps per patch."""
    patch_stride: int = Field(8, gt=0)
    """Steps between the starts of consecutive patches."""
    d_model: int = Field(128, gt=0)
    """Width of the transformer."""
    num_hidden_layers: int = Field(3, gt=0)
    """Transformer layers."""
    num_attention_heads: int = Field(16, gt=0)
    """Attention heads (d_model must be divisible by them)."""
    ffn_dim: int = Field(256, gt=0)
    """Width of the feed-forward layers."""
    dropout: float = Field(0.2, ge=0, lt=1)
    """Dropout of the attention, feed-forward and positional layers."""
    norm_type: Literal["batchnorm", "layernorm"] = "batchnorm"
    """Normalisation inside the transformer (the paper's batchnorm; layernorm behaves the same in training and
    evaluation, which helps on tiny training sets)."""
    scaling: Literal["none", "std", "mean"] = "none"
    """PatchTST's own per-series scaling; none since GloViTa's data.normalization already applies."""

    @model_validator(mode="after")
    def _check_shape(self) -> "PatchtstEncoderConfig":
        if self.d_model % self.num_attention_heads:
            raise ValueError(
                f"model.encoder.d_model={self.d_model} must be divisible by num_attention_heads="
                f"{self.num_attention_heads}."
            )
        if self.patch_length > self.context_length:
            raise ValueError(
                f"model.encoder.patch_length={self.patch_length} exceeds context_length={self.context_length}. "
                "Choose a shorter --model.encoder.patch_length."
            )
        return self


class TorchvisionVideoEncoderConfig(GlovitaConfig):
    """A torchvision video classification model as encoder (classifier removed): clips (B, C, T, H, W)."""

    encoder_type: Literal["torchvision_video"] = "torchvision_video"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Frames are 2D images."""
    temporal: ClassVar[bool] = True
    """Inputs it takes: clips (B, C, T, H, W)."""
    pools_tokens: ClassVar[bool] = False
    """It returns pooled vectors only (feature_aggregation_method does not apply)."""
    type: str = "r3d_18"
    """torchvision video model: r3d_18, mc3_18, r2plus1d_18, s3d, mvit_v1_b, mvit_v2_s (16x224x224 clips),
    swin3d_t, swin3d_s, swin3d_b."""
    pretrained: bool = True
    """Load the Kinetics-400 weights from pretrained_path or the torch hub cache (never downloaded)."""
    pretrained_path: Path | None = None
    """Local state-dict file to load instead of the cached weights."""
    input_channels: int = Field(3, ge=1)
    """Frame channels fed to the encoder; other than 3 replaces the first convolution."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for the torchvision model builder."""


class PytorchvideoEncoderConfig(GlovitaConfig):
    """A PyTorchVideo model (x3d_xs/s/m/l, slow_r50, c2d_r50, i3d_r50, csn_r101, r2plus1d_r50), built without the
    hub; needs the `pytorchvideo` extra."""

    encoder_type: Literal["pytorchvideo"] = "pytorchvideo"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Frames are 2D images."""
    temporal: ClassVar[bool] = True
    """Inputs it takes: clips (B, C, T, H, W)."""
    pools_tokens: ClassVar[bool] = False
    """It returns pooled vectors only (feature_aggregation_method does not apply)."""
    type: str = "x3d_xs"
    """PyTorchVideo model name (pytorchvideo.models.hub)."""
    pretrained: bool = False
    """Load weights from pretrained_path (there is no cache for PyTorchVideo: the file must be given)."""
    pretrained_path: Path | None = None
    """Local state-dict file of the model (e.g. the hub's X3D_XS.pyth converted or read as is)."""
    input_channels: int = Field(3, ge=1)
    """Frame channels fed to the encoder; other than 3 replaces the first convolution."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for the pytorchvideo.models.hub builder."""

    @model_validator(mode="after")
    def _check_weights(self) -> "PytorchvideoEncoderConfig":
        if self.pretrained and self.pretrained_path is None:
            raise ValueError(
                f"model.encoder.pretrained: PyTorchVideo weights for {self.type!r} are read from a local file only "
                "and GloViTa never downloads. Pass --model.encoder.pretrained_path FILE, or leave "
                "--model.encoder.no_pretrained."
            )
        return self


class FramewiseImageEncoderConfig(GlovitaConfig):
    """Any timm image model applied to every frame of a clip, features pooled over time (avg or attention); with
    a framewise head it gives per-frame features instead."""

    encoder_type: Literal["framewise_image"] = "framewise_image"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Frames are 2D images."""
    temporal: ClassVar[bool] = True
    """Inputs it takes: clips (B, C, T, H, W)."""
    pools_tokens: ClassVar[bool] = True
    """Each frame's tokens or feature maps can be pooled by feature_aggregation_method."""
    type: str = "resnet18"
    """timm model name, optionally with a pretrained tag (as for --model.encoder.encoder_type timm)."""
    pretrained: bool = True
    """Load pretrained weights from pretrained_path or the local cache (never downloaded)."""
    pretrained_path: Path | None = None
    """Local weights file (.safetensors, .pth, .pt, .bin) to load instead of the cached one."""
    input_channels: int = Field(3, ge=1)
    """Frame channels fed to the encoder (1 grayscale, 3 RGB)."""
    model_kwargs: ModelKwargs = {}
    """Extra keyword arguments for timm.create_model."""
    temporal_pooling: Literal["avg", "attention"] = "avg"
    """How the frames' features become one clip feature: their mean, or learned attention weights over frames."""


class PrecomputedEncoderConfig(GlovitaConfig):
    """Identity encoder for precomputed features (--data.dataset precomputed_features)."""

    encoder_type: Literal["precomputed"] = "precomputed"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = None
    """Inputs it takes: precomputed feature vectors or bags, no spatial axes."""
    pools_tokens: ClassVar[bool] = False
    """It returns pooled vectors only (feature_aggregation_method does not apply)."""
    feature_dim: int | None = Field(None, gt=0)
    """Dimension D of the stored features; unset takes it from the files (recorded in resolved_config.json as
    encoder_out_dim); set, it must match them."""


class ClassificationHeadConfig(GlovitaConfig):
    """Linear (or one-hidden-layer MLP) classifier trained with cross-entropy."""

    head_type: Literal["classification"] = "classification"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "vector"
    """What the head takes: one pooled feature vector per sample."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the pooled features before the classifier."""
    hidden_dim: int | None = Field(None, gt=0)
    """Width of an optional hidden layer (GELU); unset gives a linear classifier."""


class RegressionHeadConfig(GlovitaConfig):
    """Linear (or one-hidden-layer MLP) regressor with num_classes outputs."""

    head_type: Literal["regression"] = "regression"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "vector"
    """What the head takes: one pooled feature vector per sample."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the pooled features before the regressor."""
    hidden_dim: int | None = Field(None, gt=0)
    """Width of an optional hidden layer (GELU); unset gives a linear regressor."""
    loss: Literal["mse", "l1", "smooth_l1"] = "mse"
    """Regression loss."""
    standardize_targets: bool = True
    """Learn the targets standardised by the training split's mean and std per output (resolved_config.json:
    target_statistics), so the loss is in standard units whatever the targets' scale (a head beside a classifier
    weighs the same for ages in years as for fractions); predictions come out in the targets' units."""


class AbmilHeadConfig(GlovitaConfig):
    """Gated-attention MIL (Ilse et al., 2018): attention-weighted mean of instance embeddings, then a classifier."""

    head_type: Literal["abmil"] = "abmil"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "bag"
    """What the head takes: a bag of instance features with its mask."""
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
    consumes: ClassVar[HeadInput] = "bag"
    """What the head takes: a bag of instance features with its mask."""
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


class TorchvisionSegmentationEncoderConfig(GlovitaConfig):
    """The backbone of a torchvision segmentation model (FCN, DeepLabV3, LR-ASPP); with head_type
    torchvision_segmentation it is the whole torchvision model."""

    encoder_type: Literal["torchvision_segmentation"] = "torchvision_segmentation"
    """Encoder family tag."""
    spatial_dims: ClassVar[int | None] = 2
    """Inputs it takes: 2D images (B, C, H, W)."""
    pools_tokens: ClassVar[bool] = False
    """It returns pooled vectors only (feature_aggregation_method does not apply)."""
    type: Literal[
        "fcn_resnet50",
        "fcn_resnet101",
        "deeplabv3_resnet50",
        "deeplabv3_resnet101",
        "deeplabv3_mobilenet_v3_large",
        "lraspp_mobilenet_v3_large",
    ] = "deeplabv3_resnet50"
    """torchvision segmentation model (torchvision.models.segmentation)."""
    pretrained: bool = False
    """Load whole-model weights (backbone and classifier, e.g. torchvision's COCO ones) from pretrained_path."""
    pretrained_path: Path | None = None
    """Local state-dict file of the whole torchvision model (its classifier's last layer is resized to the classes)."""
    input_channels: int = Field(3, ge=1)
    """Image channels fed to the encoder; other than 3 replaces the first convolution."""

    @model_validator(mode="after")
    def _check_weights(self) -> "TorchvisionSegmentationEncoderConfig":
        if self.pretrained and self.pretrained_path is None:
            raise ValueError(
                f"model.encoder.pretrained with {self.type!r} loads whole-model weights from a local file. Set "
                f"--model.encoder.pretrained_path to the saved state dict of torchvision's {self.type}, or pass "
                "--model.encoder.no_pretrained."
            )
        return self


class UnetHeadConfig(GlovitaConfig):
    """U-Net decoder (segmentation_models_pytorch) over the encoder's multi-scale feature maps: a class per pixel,
    Dice + cross-entropy (data.task Segmentation)."""

    head_type: Literal["unet"] = "unet"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "pyramid"
    """What the head takes: the encoder's feature maps at every reduction, and the input."""
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    """Channels of the decoder blocks, coarsest first; one block per encoder level (the first ones are used)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Channel dropout before the last convolution."""
    dice_weight: float = Field(1.0, ge=0)
    """Weight of the soft Dice loss added to the cross-entropy (0: cross-entropy alone)."""
    image_loss: Literal["mse", "l1"] = "mse"
    """data.task LabelFree: the loss against the target image, mean squared or mean absolute error."""


class TorchvisionSegmentationHeadConfig(GlovitaConfig):
    """The classifier of the torchvision segmentation model the encoder comes from (FCN head, DeepLabV3's ASPP,
    LR-ASPP), upsampled to the input: with model.encoder.encoder_type torchvision_segmentation, the whole model."""

    head_type: Literal["torchvision_segmentation"] = "torchvision_segmentation"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "pyramid"
    """What the head takes: the encoder's feature maps, and the input."""
    dice_weight: float = Field(0.0, ge=0)
    """Weight of the soft Dice loss added to the cross-entropy (torchvision's recipe trains cross-entropy alone)."""
    image_loss: Literal["mse", "l1"] = "mse"
    """data.task LabelFree: the loss against the target image, mean squared or mean absolute error."""


EncoderConfigMembers = (
    TimmEncoderConfig
    | TorchvisionEncoderConfig
    | TorchvisionSegmentationEncoderConfig
    | TransformerEncoderConfig
    | Dinov2EncoderConfig
    | Dinov3EncoderConfig
    | ResidualEncoderConfig
    | PrimusEncoderConfig
    | PrecomputedEncoderConfig
    | SeriesCnnEncoderConfig
    | PatchtstEncoderConfig
    | TorchvisionVideoEncoderConfig
    | PytorchvideoEncoderConfig
    | FramewiseImageEncoderConfig
)
"""The members of EncoderConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    EncoderConfig = EncoderConfigMembers
else:
    EncoderConfig = choice(EncoderConfigMembers, discriminator="encoder_type")


class FramewiseDecoder1dHeadConfig(GlovitaConfig):
    """A label per video frame: dilated temporal 1D convolutions (MS-TCN) over per-frame features, optional
    refinement stages; per-frame cross-entropy plus MS-TCN's smoothing loss (data.subtask framewise)."""

    head_type: Literal["framewise_decoder_1d"] = "framewise_decoder_1d"
    """Head tag."""
    consumes: ClassVar[HeadInput] = "frames"
    """What the head takes: per-frame features (B, T, D) with a mask of real frames."""
    num_stages: int = Field(2, gt=0)
    """Stages: one prediction stage plus num_stages - 1 refinement stages (MS-TCN uses 4)."""
    num_layers: int = Field(6, gt=0)
    """Dilated residual layers per stage (dilations 1, 2, 4, ...: the receptive field is about 2**(layers+1)
    frames; MS-TCN uses 10)."""
    hidden_dim: int = Field(64, gt=0)
    """Channels of each stage."""
    dropout: float = Field(0.3, ge=0, lt=1)
    """Dropout in the residual layers."""
    smoothing_weight: float = Field(0.15, ge=0)
    """Weight of the truncated MSE between neighbouring frames' log-probabilities (0 turns it off)."""
    smoothing_clamp: float = Field(4.0, gt=0)
    """Truncation of that loss: squared differences are clamped at smoothing_clamp**2."""


HeadConfigMembers = (
    ClassificationHeadConfig
    | RegressionHeadConfig
    | AbmilHeadConfig
    | ClamHeadConfig
    | FramewiseDecoder1dHeadConfig
    | UnetHeadConfig
    | TorchvisionSegmentationHeadConfig
)
"""The members of HeadConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    HeadConfig = HeadConfigMembers
else:
    HeadConfig = choice(HeadConfigMembers, discriminator="head_type")


class NamedHeadConfig(GlovitaConfig):
    """A further head on the encoder's pooled features, with its own task, target field and loss weight."""

    target_field: str
    """The sample field holding this head's targets (a class index, or numbers); a sample whose value is missing
    (a negative class, a NaN) is left out of this head's loss and metrics."""
    num_outputs: int = Field(gt=0)
    """Classes (classification) or outputs (regression) of this head."""
    task: TaskName = "Classification"
    """What this head predicts: Classification or Regression."""
    subtask: SubtaskName = "multiclass"
    """multiclass or multilabel for Classification; regression for Regression."""
    head: HeadConfig = ClassificationHeadConfig()
    """The head (one that takes a pooled vector: classification or regression); it owns its loss."""
    loss_weight: float = Field(1.0, ge=0)
    """Weight of this head's loss in the sum the model minimises (the main head's weight is 1)."""

    @model_validator(mode="after")
    def _check(self) -> "NamedHeadConfig":
        if self.head.consumes != "vector":
            raise ValueError(f"head_type={self.head.head_type!r} takes {self.head.consumes}; a named head takes the "
                             "pooled features: use head_type classification or regression.")  # fmt: skip
        if self.task == "Segmentation":
            raise ValueError("task='Segmentation': a named head predicts from the pooled features, one answer per "
                             "sample. Segment with the main head (--data.task Segmentation).")  # fmt: skip
        expected = {"regression": "Regression", "classification": "Classification"}.get(self.head.head_type)
        if expected is not None and expected != self.task:  # an extension's head says what it predicts itself
            raise ValueError(f"task={self.task!r} with head_type={self.head.head_type!r}: a Regression head is "
                             "head_type regression, a Classification head classification.")  # fmt: skip
        if (self.task == "Regression") != (self.subtask == "regression") or self.subtask in ("framewise", "binary"):
            raise ValueError(f"task={self.task!r} with subtask={self.subtask!r}: use multiclass or multilabel for "
                             "Classification, regression for Regression.")  # fmt: skip
        if self.target_field in ("input", "targets", "id"):
            raise ValueError(
                f"target_field={self.target_field!r} is taken; name the sample field of this head's targets."
            )
        return self


class InputMaskConfig(GlovitaConfig):
    """A frozen trained segmenter in front of the encoder (masked classification): it multiplies each image by its
    foreground probability (soft) or thresholded mask (hard) before the encoder sees it."""

    checkpoint_path: Path | None = None
    """The segmenter: a checkpoint of a GloViTa segmentation run (SEG_RUN/checkpoints/best.pt); unset = no mask.
    Its weights are copied into this model's checkpoints, so the run needs its directory only at the start."""
    mode: Literal["soft", "hard"] = "soft"
    """soft: image x P(foreground); hard: image x (P(foreground) > threshold)."""
    threshold: float = Field(0.5, gt=0, lt=1)
    """Foreground probability above which a pixel is kept (mode hard)."""


class ModelConfig(GlovitaConfig):
    """Encoder, optional feature aggregation, head, and optional further named heads."""

    encoder: EncoderConfig = TimmEncoderConfig()
    """Image encoder."""
    head: HeadConfig = ClassificationHeadConfig()
    """Prediction head (owns its loss)."""
    heads: dict[str, NamedHeadConfig] = {}
    """Further heads on the same encoder (multi-task), by name; set in a --config file. Their metrics are prefixed by
    the name (val_<name>_accuracy, val_<name>_mae, val_<name>_loss); the main head keeps data.task and its keys."""
    feature_aggregation_method: AggregationMethod | None = None
    """Pooling of token/feature-map outputs; unset uses the encoder's own pooling (its class token or average)."""
    input_mask: InputMaskConfig = InputMaskConfig()
    """Masked classification: a trained segmenter that blanks each image's background before the encoder."""
    allow_partial_load: bool = False
    """Accept a model.encoder.pretrained_path that fits less than half of the encoder's weights (what fits loads,
    the rest stays as initialised); by default such a file is refused as another architecture's."""

    @model_validator(mode="after")
    def _check_head_names(self) -> "ModelConfig":
        import re

        for name in self.heads:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in ("ema", "loss") or "_class_" in name:
                raise ValueError(
                    f"model.heads: {name!r} is not a usable head name (its metrics are val_{name}_<metric>). Use a "
                    "short lowercase snake_case name such as 'size' or 'grade', not 'ema' or 'loss'."
                )
        from_torchvision = isinstance(self.encoder, TorchvisionSegmentationEncoderConfig)
        if isinstance(self.head, TorchvisionSegmentationHeadConfig) and not from_torchvision:
            raise ValueError(
                "model.head.head_type='torchvision_segmentation' is the classifier of a torchvision segmentation "
                f"model; model.encoder.encoder_type={self.encoder.encoder_type!r} is not one. Pass --model.encoder."
                "encoder_type torchvision_segmentation, or --model.head.head_type unet."
            )
        if self.input_mask.checkpoint_path is not None and (
            self.encoder.spatial_dims != 2 or self.head.consumes != "vector"
        ):
            raise ValueError(
                "model.input_mask masks 2D images before a classifier or regressor; this model has "
                f"model.encoder.encoder_type={self.encoder.encoder_type!r} and model.head.head_type="
                f"{self.head.head_type!r}. Use an image encoder with a classification or regression head, or unset "
                "--model.input_mask.checkpoint_path."
            )
        if self.heads and self.head.consumes != "vector":
            raise ValueError(
                f"model.heads need a main head on pooled features; model.head.head_type={self.head.head_type!r} takes "
                f"{self.head.consumes}. Use head_type classification or regression, or leave model.heads empty."
            )
        return self


def takes_bags(head: HeadConfig) -> bool:
    """Whether the head takes bags of instance features with their padding (MIL heads) rather than one sample."""
    return head.consumes == "bag"
