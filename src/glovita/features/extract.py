"""Run an encoder over a dataset's splits and write precomputed-feature HDF5 files (instance layout)."""

import os
import string
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glovita import __version__
from glovita.augmentation.factory import build_policy_transforms
from glovita.configs.extract import FILENAME_PLACEHOLDERS, ExtractFeaturesConfig
from glovita.configs.root import RootConfig
from glovita.datasets.factory import DatasetSplits, build_datasets, sample_ids
from glovita.inference.restore import RestoredRun, load_run, load_weights, without_pretrained_weights
from glovita.models.factory import build_model
from glovita.training.dataloaders import TransformedDataset, one_pass_loader
from glovita.training.progress import print_line, progress_bar
from glovita.training.resolve import encoder_name, resolve_augmentation, resolve_dataloading, resolve_device


@dataclass(frozen=True)
class ExtractedFile:
    path: Path
    split: str
    num_samples: int
    feature_dim: int
    seconds: float


def output_path(cfg: ExtractFeaturesConfig, values: dict[str, str]) -> Path:
    """The file for one split; the template may only use the documented placeholders and stay in output_dir."""
    fields = {name for _, name, _, _ in string.Formatter().parse(cfg.output_filename) if name is not None}
    unknown = sorted(fields - set(FILENAME_PLACEHOLDERS))
    if unknown:
        raise ValueError(
            f"output_filename={cfg.output_filename!r} uses unknown placeholders {unknown}. "
            f"Available: {', '.join('{' + p + '}' for p in FILENAME_PLACEHOLDERS)}."
        )
    path = (cfg.output_dir / cfg.output_filename.format(**values)).resolve()
    if not path.is_relative_to(cfg.output_dir.resolve()):
        raise ValueError(
            f"output_filename={cfg.output_filename!r} escapes output_dir '{cfg.output_dir}' (resolves to '{path}'). "
            "Use a plain file name."
        )
    return path


def _write_h5(
    path: Path, features: np.ndarray, labels: np.ndarray, ids: list[str], compression: str, attrs: dict
) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    options = {} if compression == "none" else {"compression": compression}
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("features", data=features, **options)
        handle.create_dataset("labels", data=labels)
        handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        handle.attrs.update(attrs)
    os.replace(tmp, path)


def _source(cfg: ExtractFeaturesConfig) -> tuple[RootConfig, RestoredRun | None, str]:
    """The run's config (checkpoint mode) or the command line's (explicit mode), the run, the checkpoint tag."""
    if cfg.checkpoint_path is None:
        root = RootConfig(data=cfg.data, model=cfg.model, peft=cfg.peft)
        return root, None, "none"
    run = load_run(cfg.checkpoint_path)
    return run.config, run, f"{run.run_dir.parent.name}_{cfg.checkpoint_path.stem}"


def extract_features(cfg: ExtractFeaturesConfig) -> list[ExtractedFile]:
    """Write one HDF5 file per split; features (N, D), labels (N,), ids (N,) plus provenance attributes."""
    root, run, checkpoint = _source(cfg)
    if root.data.dataset == "precomputed_features":
        raise ValueError("data.dataset='precomputed_features' already holds features; extraction reads images.")
    model_cfg = root.model.model_copy(update={"feature_aggregation_method": cfg.method})
    if run is not None:
        model_cfg = without_pretrained_weights(model_cfg)
    model = build_model(model_cfg, root.peft, root.data.num_classes, 0.0)
    if run is not None:
        load_weights(model, run)
    device = resolve_device("auto")
    encoder = model.encoder.to(device).eval()
    splits: DatasetSplits = build_datasets(root.data, root.model.encoder.input_channels)
    aug = resolve_augmentation(root.data.augmentation, encoder.preprocessing, root.model.encoder.input_channels)
    augment_tf, eval_tf = build_policy_transforms(aug.train_policy, aug.test_policy, aug.params)
    train_tf = eval_tf if cfg.use_eval_transform_for_train else augment_tf
    available = {"train": splits.train, "val": splits.val, "test": splits.test}
    if cfg.split is not None and available[cfg.split] is None:
        raise ValueError(f"split={cfg.split!r}: {root.data.dataset} has no {cfg.split} split here.")
    chosen = [cfg.split] if cfg.split else [name for name, ds in available.items() if ds is not None]
    loading = resolve_dataloading(cfg.dataloading, device)
    dtype = np.float16 if cfg.precision == 16 else np.float32
    written = []
    for split in chosen:
        dataset = available[split]
        values = {
            "method": cfg.method,
            "model": encoder_name(root),
            "dataset": root.data.dataset,
            "split": split,
            "imgsize": str(aug.image_size),
            "precision": str(cfg.precision),
            "checkpoint": checkpoint,
        }
        path = output_path(cfg, values)
        loader = one_pass_loader(TransformedDataset(dataset, train_tf if split == "train" else eval_tf), loading)
        chunks, labels = [], []
        began = time.perf_counter()
        with torch.no_grad(), progress_bar(f"extract {split}", len(loader)) as bar:
            for images, targets in loader:
                images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                chunks.append(encoder(images).float().cpu().numpy().astype(dtype))
                labels.append(np.asarray(targets))
                bar.update(1)
        seconds = time.perf_counter() - began
        features = np.concatenate(chunks)
        attrs = {**values, "glovita_version": __version__, "feature_dim": features.shape[1]}
        _write_h5(path, features, np.concatenate(labels), sample_ids(dataset), cfg.compression, attrs)
        print_line(f"{split}: {features.shape[0]} x {features.shape[1]} features -> {path}")
        written.append(ExtractedFile(path, split, features.shape[0], features.shape[1], seconds))
    return written
