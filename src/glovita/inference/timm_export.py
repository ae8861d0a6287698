"""`glovita_export --format timm`: a run whose encoder is a timm model, as a folder timm itself loads
(`timm.create_model("local-dir:PATH", pretrained=True)`, or the Hugging Face hub after an upload): timm's own
`save_for_hf` writes `model.safetensors` with timm's keys (the run's linear head as the model's classifier) and
`config.json` (architecture, num_classes, label names, and a pretrained_cfg with the run's evaluation
preprocessing: input size, mean, std, crop)."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

from torch import nn

from glovita.configs.model import TimmEncoderConfig
from glovita.inference.restore import RestoredRun
from glovita.models.composite import GlovitaModel

TIMM_FILES = ("model.safetensors", "config.json")
"""What save_for_hf writes with safe serialization: the weights and timm's config."""


def check_timm_export(run: RestoredRun) -> None:
    """What a timm model can hold: a timm encoder with its own pooling, one linear head, nothing in front of it."""
    model = run.config.model
    problems = []
    if not isinstance(model.encoder, TimmEncoderConfig):
        problems.append(f"model.encoder.encoder_type={model.encoder.encoder_type!r} is not timm")
    if model.feature_aggregation_method is not None:
        problems.append(f"model.feature_aggregation_method={model.feature_aggregation_method!r} pools otherwise than "
                        "timm's own head")  # fmt: skip
    if model.head.head_type not in ("classification", "regression") or getattr(model.head, "hidden_dim", None):
        problems.append(f"model.head (head_type {model.head.head_type!r}) is not one linear layer")
    if model.heads:
        problems.append(f"model.heads ({', '.join(model.heads)}) are further outputs")
    if model.input_mask.checkpoint_path is not None:
        problems.append("model.input_mask puts a segmenter in front of the encoder")
    if problems:
        raise ValueError(
            f"--format timm writes a plain timm classifier, and this run cannot be one: {'; '.join(problems)}. Use "
            "--format onnx, torchscript or safetensors."
        )


def _linear(head: nn.Module) -> nn.Linear:
    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 1, "check_timm_export admits one linear layer"
    return layers[0]


def export_timm(model: GlovitaModel, run: RestoredRun, folder: Path) -> nn.Module:
    """Write the timm folder into `folder` (a fresh one) and return the model timm loads back from it."""
    import timm
    from timm.models import save_for_hf

    encoder: Any = model.encoder
    settings = run.config.model.encoder
    assert isinstance(settings, TimmEncoderConfig)
    architecture = settings.type.split(".")[0]
    linear = _linear(cast(nn.Module, model.head))
    channels = settings.input_channels
    kwargs: dict[str, Any] = {"num_classes": linear.out_features, "in_chans": channels, **settings.model_kwargs}
    plain: Any = timm.create_model(architecture, pretrained=False, **kwargs)
    classifier = plain.get_classifier()
    prefix = next(name for name, module in plain.named_modules() if module is classifier)
    state = {**encoder.model.state_dict(), f"{prefix}.weight": linear.weight, f"{prefix}.bias": linear.bias}
    plain.load_state_dict(state)
    record = run.resolved.get("augmentation") or {}
    size = int(record.get("image_size") or plain.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    resize = record.get("resize_size")
    plain.pretrained_cfg = {
        **plain.pretrained_cfg,
        "input_size": (channels, size, size),
        "mean": tuple(record.get("mean") or plain.pretrained_cfg.get("mean")),
        "std": tuple(record.get("std") or plain.pretrained_cfg.get("std")),
        "interpolation": record.get("interpolation", "bilinear"),
        "crop_pct": round(size / int(resize), 6) if resize else 1.0,
        "crop_mode": record.get("crop_mode", "center"),
        "num_classes": linear.out_features,
    }
    class_names = list(run.resolved.get("class_names") or [])
    args = {"in_chans": channels, **dict(settings.model_kwargs)}
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".timm-"))
    try:  # written beside, then renamed into place: an interrupted export leaves no half-written file
        save_for_hf(plain, str(staging), model_config={"label_names": class_names} if class_names else None,
                    model_args=args, safe_serialization=True)  # fmt: skip
        for name in TIMM_FILES:
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    loaded = timm.create_model(f"local-dir:{folder.resolve()}", pretrained=True)
    return loaded.eval()
