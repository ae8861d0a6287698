"""`glovita_extract_features`: which model and data to read, and how to write the HDF5 feature files."""

from pathlib import Path
from typing import Literal

from glovita.configs.base import GlovitaConfig
from glovita.configs.data import DataConfig, DigitsConfig
from glovita.configs.dataloading import DataloadingConfig
from glovita.configs.model import AggregationMethod, ModelConfig
from glovita.configs.peft import FullFinetuningConfig, PeftConfig

DEFAULT_FILENAME = "agg_{method}_{model}_{dataset}_{split}_size{imgsize}_float{precision}.h5"
FILENAME_PLACEHOLDERS = ("method", "model", "dataset", "split", "imgsize", "precision", "checkpoint")


class ExtractFeaturesConfig(GlovitaConfig):
    """Encoder features of a dataset's splits, written as precomputed-feature HDF5 files."""

    checkpoint_path: Path | None = None
    """Checkpoint of a GloViTa run; its config.json rebuilds data, model and PEFT (their flags are then ignored)."""
    method: AggregationMethod | Literal["native", "minirocket"] | None = None
    """Pooling of the encoder's tokens or feature map (joint = class token + mean patch token), or native: the
    encoder's own pooled output. Unset: avg where the encoder returns tokens or maps, native where it returns
    pooled vectors only (torchvision). minirocket (time series): aeon's MiniRocket transform fitted on the
    training split instead of an encoder (9,996 features)."""
    split: Literal["train", "val", "test"] | None = None
    """Split to extract; unset extracts every split the dataset has."""
    precision: Literal[16, 32] = 32
    """Stored float precision of the features."""
    compression: Literal["gzip", "lzf", "none"] = "none"
    """HDF5 compression of the features dataset."""
    output_dir: Path = Path("precomputed_features")
    """Folder that receives the files."""
    output_filename: str = DEFAULT_FILENAME
    """File-name template; placeholders {method} {model} {dataset} {split} {imgsize} {precision} {checkpoint}."""
    use_eval_transform_for_train: bool = True
    """Use the deterministic evaluation transform for the train split too."""
    data: DataConfig = DigitsConfig()
    """Dataset to read (explicit config mode)."""
    model: ModelConfig = ModelConfig()
    """Encoder to run (explicit config mode); the head is built but not used."""
    peft: PeftConfig = FullFinetuningConfig()
    """PEFT method of the model (explicit config mode)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to run the encoder: auto picks CUDA when available."""
    dataloading: DataloadingConfig = DataloadingConfig(batch_size=128)
    """Batching and workers (eval_batch_size, else batch_size, is the extraction batch)."""
