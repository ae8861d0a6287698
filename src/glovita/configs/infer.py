"""`glovita_infer`: which checkpoint, which samples, where the predictions go."""

from pathlib import Path
from typing import Literal

from pydantic import model_validator

from glovita.configs.base import GlovitaConfig
from glovita.configs.dataloading import DataloadingConfig


class InferConfig(GlovitaConfig):
    """Predict with a trained run: a split of its dataset, a folder of images, or a CSV of image paths."""

    checkpoint_path: Path
    """Checkpoint of a GloViTa run (RUN/checkpoints/best.pt); the run's config.json rebuilds the model."""
    output_dir: Path = Path("predictions")
    """Folder that receives predictions.csv (and metrics.json when true labels are known); framewise video runs
    also write frame_predictions.csv (one row per frame)."""
    split: Literal["train", "val", "test"] | None = None
    """Split of the run's dataset to predict; the default when no image_dir / image_csv / series_file is given is
    test."""
    image_dir: Path | None = None
    """Folder of images (searched recursively). Images in subfolders named like the run's classes get that true
    label, so metrics are written too."""
    image_csv: Path | None = None
    """CSV of images: a path column (relative to the CSV's folder, or absolute) and an optional label column."""
    video_dir: Path | None = None
    """Video runs: a folder of video files (searched recursively). Videos in subfolders named like the run's classes
    get that true label, so metrics are written too (clip-level runs)."""
    series_file: Path | None = None
    """Time-series runs: a .ts or .npz file of series to predict, read, normalised and brought to length as the
    run's test split (labels, when the file has them, give metrics.json; `@classLabel false` files have none)."""
    csv_path_column: str = "path"
    """Column of image_csv holding the image path."""
    csv_label_column: str | None = None
    """Column of image_csv holding the true label (class name or index; a number for regression); unset uses a
    `label` column when the CSV has one. A column named here must exist."""
    tta: Literal["none", "hflip"] = "none"
    """Test-time augmentation: hflip averages the predictions of each image and its mirror image."""
    use_ema: bool = False
    """Predict with the checkpoint's EMA weights (runs trained with training.ema_decay)."""
    on_unreadable: Literal["fail", "skip"] = "fail"
    """An unreadable file of image_dir / image_csv / video_dir: fail naming them all, or skip them with a warning
    listing them (videos are then decoded whole first, so a damaged body is skipped too)."""
    attention_format: Literal["h5", "csv", "none"] = "h5"
    """MIL runs (abmil, clam): also write each bag's instance attention (one score per branch, and the coords
    when the slide files have them) to OUTPUT_DIR/attention/<slide_id>.h5 or .csv, for glovita_mil_heatmap."""
    saliency: Literal["none", "hirescam", "gradcam", "gradcam++", "input_gradient"] = "none"
    """Classification runs on images: also write OUTPUT_DIR/saliency/<id>.png (the image, then this saliency map of
    its true class, or predicted class when unlabelled, over it) and, when the split has annotated segments
    (data.masks_dir), mean saliency IoU and pointing-game accuracy in metrics.json."""
    saliency_layer: str | None = None
    """Module of the encoder's model whose output a CAM weighs; unset takes the run's training.step.target_layer
    (saliency-guided runs) or the encoder's last feature stage."""
    precision: Literal["run", "32", "bf16-mixed", "16-mixed"] = "run"
    """Numerics of the forward pass: run = the run's training.precision, which its test pass used too, so that
    metrics.json reproduces test_metrics.json (a 16-mixed run predicted on CPU runs in 32); 32 predicts in full
    precision; 16-mixed needs CUDA."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to run: auto picks CUDA when available."""
    dataloading: DataloadingConfig = DataloadingConfig(batch_size=128)
    """Batching and workers (eval_batch_size, else batch_size, is the inference batch)."""

    @model_validator(mode="after")
    def _one_source(self) -> "InferConfig":
        sources = ("split", "image_dir", "image_csv", "series_file", "video_dir")
        given = [name for name in sources if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"Give one of {', '.join(sources)} (got {', '.join(given)}).")
        return self
