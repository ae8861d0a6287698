"""Model assembly: config -> encoder, head, PEFT."""

from glovita.configs.model import (
    AbmilHeadConfig,
    ClamHeadConfig,
    ClassificationHeadConfig,
    ModelConfig,
    PrecomputedEncoderConfig,
    RegressionHeadConfig,
    TimmEncoderConfig,
    TorchvisionEncoderConfig,
)
from glovita.configs.peft import FullFinetuningConfig, LinearProbingConfig, PeftConfig
from glovita.models.composite import GlovitaModel


def build_encoder(cfg: ModelConfig):
    """The image encoder of `cfg.encoder` with `cfg.feature_aggregation_method` applied."""
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
        case PrecomputedEncoderConfig():
            from glovita.models.img_encoder.precomputed import PrecomputedEncoder

            return PrecomputedEncoder(encoder.feature_dim)
        case _:
            raise TypeError(f"No encoder branch for {type(encoder).__name__} in glovita/models/factory.py.")


def build_head(
    cfg: ModelConfig,
    in_dim: int,
    num_outputs: int,
    label_smoothing: float,
    multilabel: bool = False,
    class_weight: list[float] | None = None,
):
    """The head of `cfg.head` on `in_dim` features with `num_outputs` outputs."""
    head = cfg.head
    match head:
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
        case _:
            raise TypeError(f"No head branch for {type(head).__name__} in glovita/models/factory.py.")


def apply_peft(model: GlovitaModel, cfg: PeftConfig) -> GlovitaModel:
    """Mark what trains according to `cfg.method`."""
    match cfg:
        case FullFinetuningConfig():
            from glovita.models.peft.full_finetuning import apply_full_finetuning

            return apply_full_finetuning(model)
        case LinearProbingConfig():
            from glovita.models.peft.linear_probing import apply_linear_probing

            return apply_linear_probing(model)
        case _:
            raise TypeError(f"No PEFT branch for {type(cfg).__name__} in glovita/models/factory.py.")


def build_model(
    cfg: ModelConfig,
    peft: PeftConfig,
    num_outputs: int,
    label_smoothing: float,
    multilabel: bool = False,
    class_weight: list[float] | None = None,
) -> GlovitaModel:
    """Encoder + head with PEFT applied; the head has `num_outputs` outputs (data.num_classes).

    `class_weight` weights the classification loss per class (multilabel: BCE pos_weight of each label)."""
    encoder = build_encoder(cfg)
    head = build_head(cfg, encoder.out_dim, num_outputs, label_smoothing, multilabel, class_weight)
    return apply_peft(GlovitaModel(encoder, head), peft)
