"""`glovita_export --format timm`: a run whose encoder is a timm model, as a folder timm itself loads
(`timm.create_model("local-dir:PATH", pretrained=True)`, or the Hugging Face hub after an upload): timm's own
`save_for_hf` writes `model.safetensors` with timm's keys (the run's linear head as the model's classifier) and
`config.json` (architecture, num_classes, label names, and a pretrained_cfg with the run's evaluation
preprocessing: input size, mean, std, crop)."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import cast

from torch import nn

from glovita.inference.restore import RestoredRun
from glovita.models.composite import GlovitaModel

TIMM_FILES = ("model.safetensors", "config.json")
"""What save_for_hf writes with safe serialization: the weights and timm's config."""


def check_timm_export(run: RestoredRun) -> None:
    """What a timm model can hold beyond its encoder: one linear head, nothing in front of it."""
    model = run.config.model
    problems = []
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

    to_timm = getattr(model.encoder, "as_timm_classifier", None)
    if to_timm is None:
        raise ValueError(
            f"--format timm writes a plain timm classifier, and model.encoder.encoder_type="
            f"{run.config.model.encoder.encoder_type!r} is not a timm model. Use --format onnx, torchscript or "
            "safetensors."
        )
    linear = _linear(cast(nn.Module, model.head))
    plain, args = to_timm(linear)
    channels = int(args["in_chans"])
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
