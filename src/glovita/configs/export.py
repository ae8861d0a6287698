"""`glovita_export`: which checkpoint, which format, where."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class ExportConfig(GlovitaConfig):
    """Export a trained run's model (adapters merged) with its preprocessing, verified on the run's test split."""

    checkpoint_path: Path
    """Checkpoint of a GloViTa run (RUN/checkpoints/best.pt); the run's config.json rebuilds the model."""
    format: Literal["onnx", "torchscript", "safetensors", "timm"] = "onnx"
    """onnx (verified with onnxruntime), torchscript (traced), safetensors (weights, with config.json), or timm (a
    folder timm.create_model("local-dir:PATH") loads: a timm encoder with a linear head, timm's keys)."""
    output_dir: Path = Path("exported")
    """Folder that receives model.onnx / model.pt / model.safetensors and preprocessing.json."""
    use_ema: bool = False
    """Export the checkpoint's EMA weights (runs trained with training.ema_decay)."""
    opset: int = Field(18, ge=13)
    """ONNX opset version."""
    verify_samples: int = Field(32, gt=1)
    """Samples of the run's test split (else val) the export is checked on: logits within 1e-4 of PyTorch's and the
    same predicted class."""
    tolerance: float = Field(1e-4, gt=0)
    """Largest absolute difference of logits accepted by the check."""
