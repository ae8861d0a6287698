"""Model assembly: config -> encoder, head, PEFT."""

from typing import Any, cast

from torch import nn

from glovita.configs.data import DataConfig, PrecomputedFeaturesConfig
from glovita.configs.model import (
    AbmilHeadConfig,
    ClamHeadConfig,
    ClassificationHeadConfig,
    Dinov2EncoderConfig,
    Dinov3EncoderConfig,
    FramewiseDecoder1dHeadConfig,
    FramewiseImageEncoderConfig,
    ModelConfig,
    PatchtstEncoderConfig,
    PrecomputedEncoderConfig,
    PrimusEncoderConfig,
    PytorchvideoEncoderConfig,
    RegressionHeadConfig,
    ResidualEncoderConfig,
    SeriesCnnEncoderConfig,
    TimmEncoderConfig,
    TorchvisionEncoderConfig,
    TorchvisionSegmentationEncoderConfig,
    TorchvisionSegmentationHeadConfig,
    TorchvisionVideoEncoderConfig,
    TransformerEncoderConfig,
    UnetHeadConfig,
)
from glovita.configs.peft import (
    BitfitConfig,
    DoraConfig,
    FullFinetuningConfig,
    LinearProbingConfig,
    LoraConfig,
    PartialFinetuningConfig,
    PeftConfig,
)
from glovita.models.composite import Encoder, GlovitaModel, Head

_OWN_WEIGHT_LOADERS = (
    "timm",
    "torchvision",
    "dinov2",
    "dinov3",
    "torchvision_video",
    "framewise_image",
    "pytorchvideo",
    "torchvision_segmentation",
)
"""Families that load plain weight files themselves (with their filters: classifier dropped, channels adapted)."""


def build_encoder(cfg: ModelConfig, standardize_features: bool = False) -> Encoder:
    """The image encoder of `cfg.encoder` with `cfg.feature_aggregation_method` applied (the precomputed encoder
    standardising its features when `standardize_features`).

    A `pretrained_path` that is a GloViTa checkpoint (any family), or any weights file of a family without its
    own loader, is loaded here by load_encoder_weights; the family then builds without weights."""
    from glovita.models.weights import is_glovita_checkpoint

    encoder_cfg = cfg.encoder
    path = getattr(encoder_cfg, "pretrained_path", None) if getattr(encoder_cfg, "pretrained", False) else None
    own_loader = encoder_cfg.encoder_type in _OWN_WEIGHT_LOADERS
    load_here = path is not None and (not own_loader or is_glovita_checkpoint(path))
    if load_here and own_loader:
        plain = encoder_cfg.model_copy(update={"pretrained": False, "pretrained_path": None})
        cfg = cfg.model_copy(update={"encoder": plain})
    encoder = _build_encoder(cfg, standardize_features)
    if load_here and path is not None:
        from glovita.models.weights import describe_load, load_encoder_weights
        from glovita.runtime.progress import print_line

        print_line(describe_load(path, load_encoder_weights(cast(nn.Module, encoder), path, cfg.allow_partial_load)))
    return encoder


def _build_encoder(cfg: ModelConfig, standardize_features: bool) -> Encoder:
    encoder = cfg.encoder
    match encoder:
        case TimmEncoderConfig():
            from glovita.models.img_encoder.timm_encoder import TimmImgEncoder

            return TimmImgEncoder(
                name=encoder.type,
                pretrained=encoder.pretrained,
                pretrained_file=encoder.pretrained_path,
                input_channels=encoder.input_channels,
                model_kwargs=encoder.model_kwargs,
                aggregation=cfg.feature_aggregation_method,
            )
        case Dinov2EncoderConfig() | Dinov3EncoderConfig():
            return _build_dino_encoder(encoder, cfg.feature_aggregation_method)
        case TransformerEncoderConfig():
            from glovita.models.img_encoder.transformer_encoder import TransformerImgEncoder

            return TransformerImgEncoder(
                name=encoder.type,
                pretrained=encoder.pretrained and encoder.pretrained_path is None,
                input_channels=encoder.input_channels,
                model_kwargs=encoder.model_kwargs,
                aggregation=cfg.feature_aggregation_method,
            )
        case ResidualEncoderConfig() | PrimusEncoderConfig():
            return _build_nnunet_encoder(encoder, cfg.feature_aggregation_method)
        case TorchvisionEncoderConfig():
            from glovita.models.img_encoder.torchvision_encoder import TorchvisionImgEncoder

            if cfg.feature_aggregation_method is not None:
                raise ValueError(
                    f"model.feature_aggregation_method={cfg.feature_aggregation_method!r}: torchvision encoders "
                    "return pooled vectors, not tokens. Leave it unset or use --model.encoder.encoder_type timm."
                )
            return TorchvisionImgEncoder(
                name=encoder.type,
                pretrained=encoder.pretrained,
                pretrained_file=encoder.pretrained_path,
                input_channels=encoder.input_channels,
                model_kwargs=encoder.model_kwargs,
            )
        case TorchvisionSegmentationEncoderConfig():
            from glovita.models.img_encoder.torchvision_segmentation import TorchvisionSegmentationEncoder

            if cfg.feature_aggregation_method is not None:
                raise ValueError(
                    f"model.feature_aggregation_method={cfg.feature_aggregation_method!r}: torchvision_segmentation "
                    "encoders average their last feature map. Leave it unset."
                )
            return TorchvisionSegmentationEncoder(
                encoder.type, encoder.pretrained, encoder.pretrained_path, encoder.input_channels
            )
        case SeriesCnnEncoderConfig() | PatchtstEncoderConfig():
            return _build_series_encoder(encoder, cfg.feature_aggregation_method)
        case TorchvisionVideoEncoderConfig() | PytorchvideoEncoderConfig():
            return _build_video_encoder(encoder, cfg.feature_aggregation_method)
        case FramewiseImageEncoderConfig():
            from glovita.models.video_encoder.framewise_image import FramewiseImageEncoder

            return FramewiseImageEncoder(
                name=encoder.type,
                pretrained=encoder.pretrained,
                pretrained_file=encoder.pretrained_path,
                input_channels=encoder.input_channels,
                model_kwargs=encoder.model_kwargs,
                aggregation=cfg.feature_aggregation_method,
                temporal_pooling=encoder.temporal_pooling,
            )
        case PrecomputedEncoderConfig():
            from glovita.models.img_encoder.precomputed import PrecomputedEncoder

            if encoder.feature_dim is None:
                raise ValueError(
                    "model.encoder.feature_dim is unset; glovita_train takes it from the feature files. Elsewhere, "
                    "set --model.encoder.feature_dim to the stored dimension."
                )
            return PrecomputedEncoder(encoder.feature_dim, standardize_features)
        case _:  # an installed package's encoder: builder(encoder config) -> Encoder
            from glovita.configs.extensions import build_extension

            return cast(Encoder, build_extension(encoder))


def _build_nnunet_encoder(encoder: ResidualEncoderConfig | PrimusEncoderConfig, aggregation: str | None) -> Encoder:
    """The dynamic-network-architectures encoders (2D/3D residual encoder, Primus)."""
    match encoder:
        case ResidualEncoderConfig():
            from glovita.models.img_encoder.nnunet_encoders import ResidualImgEncoder

            return ResidualImgEncoder(
                spatial_dims=encoder.spatial_dims,
                input_channels=encoder.input_channels,
                features_per_stage=encoder.features_per_stage,
                blocks_per_stage=encoder.blocks_per_stage,
                strides=encoder.strides,
                kernel_size=encoder.kernel_size,
                norm=encoder.norm,
                model_kwargs=encoder.model_kwargs,
                aggregation=aggregation,
            )
        case PrimusEncoderConfig():
            from glovita.models.img_encoder.nnunet_encoders import PrimusImgEncoder

            return PrimusImgEncoder(
                input_channels=encoder.input_channels,
                input_shape=encoder.input_shape,
                patch_size=encoder.patch_size,
                embed_dim=encoder.embed_dim,
                depth=encoder.depth,
                num_heads=encoder.num_heads,
                num_register_tokens=encoder.num_register_tokens,
                model_kwargs=encoder.model_kwargs,
                aggregation=aggregation,
            )
    raise TypeError(f"No nnU-Net encoder branch for {type(encoder).__name__}.")


def _build_series_encoder(encoder: SeriesCnnEncoderConfig | PatchtstEncoderConfig, aggregation: str | None) -> Encoder:
    """Time-series encoders (FCN / ResNet / InceptionTime, PatchTST)."""
    match encoder:
        case SeriesCnnEncoderConfig():
            from glovita.models.series_encoder.cnn import SeriesCnnEncoder

            if aggregation is not None:
                raise ValueError(
                    f"model.feature_aggregation_method={aggregation!r}: series CNNs average "
                    "their feature maps over time. Leave it unset."
                )
            return SeriesCnnEncoder(encoder.type, encoder.input_channels)
        case PatchtstEncoderConfig():
            from glovita.models.series_encoder.patchtst import PatchtstSeriesEncoder

            return PatchtstSeriesEncoder(
                input_channels=encoder.input_channels,
                context_length=encoder.context_length,
                patch_length=encoder.patch_length,
                patch_stride=encoder.patch_stride,
                d_model=encoder.d_model,
                num_hidden_layers=encoder.num_hidden_layers,
                num_attention_heads=encoder.num_attention_heads,
                ffn_dim=encoder.ffn_dim,
                dropout=encoder.dropout,
                scaling=encoder.scaling,
                norm_type=encoder.norm_type,
            )
    raise TypeError(f"No series encoder branch for {type(encoder).__name__}.")


def _build_video_encoder(
    encoder: TorchvisionVideoEncoderConfig | PytorchvideoEncoderConfig, aggregation: str | None
) -> Encoder:
    """Clip encoders that pool over space and time themselves (torchvision video models, PyTorchVideo)."""
    if aggregation is not None:
        raise ValueError(
            f"model.feature_aggregation_method={aggregation!r}: {encoder.encoder_type} "
            "encoders return pooled vectors. Leave it unset, or use --model.encoder.encoder_type "
            "framewise_image."
        )
    if isinstance(encoder, PytorchvideoEncoderConfig):
        from glovita.models.video_encoder.pytorchvideo_encoder import PytorchvideoEncoder

        return PytorchvideoEncoder(
            encoder.type, encoder.pretrained_path if encoder.pretrained else None, encoder.input_channels,
            encoder.model_kwargs,
        )  # fmt: skip
    from glovita.models.video_encoder.torchvision_video import TorchvisionVideoEncoder

    return TorchvisionVideoEncoder(
        encoder.type, encoder.pretrained, encoder.pretrained_path, encoder.input_channels, encoder.model_kwargs
    )


def _build_dino_encoder(encoder: Dinov2EncoderConfig | Dinov3EncoderConfig, aggregation: str | None) -> Encoder:
    """A DINOv2/v3 ViT through timm with patch-aware preprocessing; any input size works (position embeddings
    interpolated, borders padded to the patch size)."""
    from glovita.models.img_encoder.timm_encoder import TimmImgEncoder
    from glovita.models.preprocessing import dino_preprocessing

    family = encoder.encoder_type
    if family not in encoder.type:
        raise ValueError(
            f"model.encoder.type={encoder.type!r} is not a {family} model. Use a timm {family} name such as "
            f"{type(encoder).model_fields['type'].default!r}, or --model.encoder.encoder_type timm."
        )
    built = TimmImgEncoder(
        name=encoder.type,
        pretrained=encoder.pretrained,
        pretrained_file=encoder.pretrained_path,
        input_channels=encoder.input_channels,
        model_kwargs={
            "img_size": encoder.image_size,
            "dynamic_img_size": True,
            "dynamic_img_pad": True,
            **encoder.model_kwargs,
        },
        aggregation=aggregation,
    )
    built.preprocessing = dino_preprocessing(built.preprocessing, encoder.image_size)
    return built


def build_head(
    cfg: ModelConfig,
    in_dim: int,
    num_outputs: int,
    label_smoothing: float,
    multilabel: bool = False,
    class_weight: list[float] | None = None,
    encoder: Encoder | None = None,
    ignore_index: int = 255,
    image_targets: bool = False,
) -> Head:
    """The head of `cfg.head` on `in_dim` features with `num_outputs` outputs; dense heads read the `encoder`'s
    levels (and skip pixels labelled `ignore_index` in their loss; `image_targets`: they predict images, with a
    squared-error loss)."""
    head = cfg.head
    match head:
        case UnetHeadConfig() | TorchvisionSegmentationHeadConfig():
            return _build_dense_head(head, encoder, num_outputs, ignore_index, image_targets)
        case ClassificationHeadConfig():
            import torch

            from glovita.models.heads.classification import ClassificationHead

            weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
            return ClassificationHead(
                in_dim, num_outputs, head.dropout, head.hidden_dim, label_smoothing, multilabel, weight
            )
        case RegressionHeadConfig():
            from glovita.models.heads.regression import RegressionHead

            return RegressionHead(in_dim, num_outputs, head.dropout, head.hidden_dim, head.loss)
        case AbmilHeadConfig():
            from glovita.models.heads.abmil import AbmilHead

            return AbmilHead(in_dim, num_outputs, head.hidden_dim, head.attention_dim, head.gated, head.dropout)
        case ClamHeadConfig():
            from glovita.models.heads.clam import ClamHead

            return ClamHead(
                in_dim=in_dim,
                num_classes=num_outputs,
                variant=head.variant,
                size=head.size,
                dropout=head.dropout,
                instance_eval=head.instance_eval,
                k_sample=head.k_sample,
                bag_weight=head.bag_weight,
                instance_loss=head.instance_loss,
                subtyping=head.subtyping,
            )
        case FramewiseDecoder1dHeadConfig():
            from glovita.models.heads.framewise_decoder_1d import FramewiseDecoder1dHead

            return FramewiseDecoder1dHead(
                in_dim=in_dim,
                num_classes=num_outputs,
                num_stages=head.num_stages,
                num_layers=head.num_layers,
                hidden_dim=head.hidden_dim,
                dropout=head.dropout,
                smoothing_weight=head.smoothing_weight,
                smoothing_clamp=head.smoothing_clamp,
            )
        case _:  # an installed package's head: builder(head config, in_dim, num_outputs) -> Head
            from glovita.configs.extensions import build_extension

            return cast(Head, build_extension(head, in_dim, num_outputs))


def _build_dense_head(
    head: UnetHeadConfig | TorchvisionSegmentationHeadConfig, encoder: Encoder | None, num_classes: int,
    ignore_index: int, image_targets: bool = False,
) -> Head:  # fmt: skip
    """A head with a class per pixel (or, `image_targets`, a value per pixel and channel) over the encoder's
    pyramid."""
    from glovita.models.heads.dense import (
        DenseHead,
        DenseLoss,
        ImageLoss,
        StagesDecoder,
        TorchvisionClassifier,
        UnetDecoder,
    )

    channels = getattr(encoder, "pyramid_channels", None)
    if encoder is None or channels is None:
        raise ValueError(
            f"model.head.head_type={head.head_type!r} decodes feature maps at several scales, and this encoder "
            "does not give them. Use --model.encoder.encoder_type timm (a CNN such as resnet18) or "
            "torchvision_segmentation."
        )
    loss: DenseLoss | ImageLoss = (
        ImageLoss(head.image_loss) if image_targets else DenseLoss(ignore_index, head.dice_weight)
    )
    own_decoder = getattr(encoder, "unet_decoder", None)  # nnU-Net encoders come with nnU-Net's decoder (2D and 3D)
    if isinstance(head, UnetHeadConfig) and own_decoder is not None:
        return DenseHead(StagesDecoder(own_decoder(num_classes)), loss)
    if isinstance(head, UnetHeadConfig):
        if len(head.decoder_channels) < len(channels) - 1:
            raise ValueError(
                f"model.head.decoder_channels={list(head.decoder_channels)} has {len(head.decoder_channels)} blocks "
                f"and the encoder gives {len(channels) - 1} levels. Give at least {len(channels) - 1} channels."
            )
        return DenseHead(UnetDecoder(channels, num_classes, head.decoder_channels, head.dropout), loss)
    classifier = cast(Any, encoder).take_classifier(num_classes)
    return DenseHead(TorchvisionClassifier(classifier, bool(cast(Any, encoder).takes_levels)), loss)


def apply_peft(model: GlovitaModel, cfg: PeftConfig) -> GlovitaModel:
    """Mark what trains according to `cfg.method`."""
    match cfg:
        case FullFinetuningConfig():
            from glovita.models.peft.full_finetuning import apply_full_finetuning

            return apply_full_finetuning(model)
        case LinearProbingConfig():
            from glovita.models.peft.linear_probing import apply_linear_probing

            return apply_linear_probing(model)
        case PartialFinetuningConfig():
            from glovita.models.peft.partial import apply_partial_finetuning

            return apply_partial_finetuning(model, cfg.trainable_blocks)
        case BitfitConfig():
            from glovita.models.peft.partial import apply_bitfit

            return apply_bitfit(model)
        case LoraConfig() | DoraConfig():
            from glovita.models.peft.low_rank import apply_low_rank

            return apply_low_rank(
                model, cfg.rank, cfg.alpha, cfg.dropout, cfg.target_modules, dora=cfg.method == "dora"
            )
        case _:
            raise TypeError(f"No PEFT branch for {type(cfg).__name__} in glovita/models/factory.py.")


def standardizes_features(data: DataConfig) -> bool:
    """Whether the run standardises its feature files (data.standardize_features of precomputed_features)."""
    return isinstance(data, PrecomputedFeaturesConfig) and data.standardize_features


def build_model(
    cfg: ModelConfig,
    peft: PeftConfig,
    num_outputs: int,
    label_smoothing: float,
    multilabel: bool = False,
    class_weight: list[float] | None = None,
    standardize_features: bool = False,
    ignore_index: int = 255,
    image_targets: bool = False,
) -> GlovitaModel:
    """Encoder + head (+ the named heads of model.heads) with PEFT applied; the head has `num_outputs` outputs
    (data.num_classes).

    `class_weight` weights the classification loss per class (multilabel: BCE pos_weight of each label);
    `standardize_features` (data.standardize_features) gives the precomputed encoder its statistics buffers;
    `ignore_index` (data.ignore_index) is the label-map value dense heads leave out of their loss; `image_targets`
    (a label-free task) makes a dense head predict images."""
    encoder = build_encoder(cfg, standardize_features)
    head = build_head(
        cfg, encoder.out_dim, num_outputs, label_smoothing, multilabel, class_weight, encoder, ignore_index,
        image_targets,
    )  # fmt: skip
    named = {
        name: (
            build_head(cfg.model_copy(update={"head": spec.head}), encoder.out_dim, spec.num_outputs, 0.0,
                       spec.subtask == "multilabel"),
            spec.target_field,
            spec.loss_weight,
        )
        for name, spec in cfg.heads.items()
    }  # fmt: skip
    return apply_peft(GlovitaModel(encoder, head, named), peft)
