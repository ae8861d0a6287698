"""Run an encoder over a dataset's splits and write precomputed-feature HDF5 files (instance layout)."""

import string
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glovita import __version__
from glovita.configs.extract import FILENAME_PLACEHOLDERS, ExtractFeaturesConfig
from glovita.configs.root import RootConfig
from glovita.datasets.factory import DatasetSplits, build_datasets, sample_ids
from glovita.inference.restore import RestoredRun, load_run, rebuild_model
from glovita.models.composite import encode, frame_features
from glovita.models.factory import build_model
from glovita.runtime.batch import Batch
from glovita.runtime.forward import forward_loop
from glovita.runtime.io import atomic_path, check_output_dir
from glovita.runtime.loaders import one_pass_loader
from glovita.runtime.progress import print_line
from glovita.tasks.factory import build_task
from glovita.training.resolve import encoder_name, resolve_dataloading, resolve_device


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


def write_features(
    path: Path,
    features: np.ndarray,
    labels: np.ndarray,
    ids: list[str],
    compression: str,
    attrs: dict,
    frames: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Instances (N, D); with `frames` = (bag_ptr (B+1,), frame_labels (M,)) variable-size bags, one per video."""
    import h5py

    options = {} if compression == "none" else {"compression": compression}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("features", data=features, **options)
        handle.create_dataset("labels", data=labels)
        if frames is not None:
            handle.create_dataset("bag_ptr", data=frames[0])
            handle.create_dataset("frame_labels", data=frames[1])
        handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        handle.attrs.update(attrs)


def _source(cfg: ExtractFeaturesConfig) -> tuple[RootConfig, RestoredRun | None, str]:
    """The run's config (checkpoint mode) or the command line's (explicit mode), the run, the checkpoint tag."""
    if cfg.checkpoint_path is None:
        root = RootConfig(data=cfg.data, model=cfg.model, peft=cfg.peft)
        return root, None, "none"
    run = load_run(cfg.checkpoint_path)
    return run.config, run, f"{run.run_dir.parent.name}_{cfg.checkpoint_path.stem}"


def extract_features(cfg: ExtractFeaturesConfig) -> list[ExtractedFile]:
    """Write one HDF5 file per split; features (N, D), labels (N,), ids (N,) plus provenance attributes.

    Samples go through the run's evaluation pipeline (its modality's, as for glovita_infer); the train split
    through the training pipeline unless use_eval_transform_for_train."""
    check_output_dir(cfg.output_dir)
    if cfg.method == "minirocket":
        from glovita.features.minirocket import extract_minirocket

        return extract_minirocket(cfg)
    root, run, checkpoint = _source(cfg)
    if root.data.spatial_dims is None:
        raise ValueError(
            f"data.dataset={root.data.dataset!r} already holds features; extraction reads images or volumes."
        )
    method = cfg.method or ("avg" if root.model.encoder.pools_tokens else "native")
    model_cfg = root.model.model_copy(update={"feature_aggregation_method": None if method == "native" else method})
    if run is not None:
        model = rebuild_model(run, model_cfg=model_cfg)
    else:  # an untrained (pretrained or random) encoder named by the config
        model = build_model(model_cfg, root.peft, root.data.num_classes, 0.0)
    device = resolve_device(cfg.device, setting="device")
    encoder = model.encoder.to(device).eval()
    input_mask = model.input_mask.to(device).eval() if model.input_mask is not None else None
    channels = getattr(root.model.encoder, "input_channels", 3)
    splits: DatasetSplits = build_datasets(root.data, channels)
    modality = splits.modality
    record = run.resolved.get("augmentation") if run is not None else None
    pipeline = modality.pipeline(encoder.preprocessing, channels, record or None)
    memory_format = modality.memory_format(True)
    available = {"train": splits.train, "val": splits.val, "test": splits.test}
    if cfg.split is not None and available[cfg.split] is None:
        raise ValueError(f"split={cfg.split!r}: {root.data.dataset} has no {cfg.split} split here.")
    chosen = [cfg.split] if cfg.split else [name for name, ds in available.items() if ds is not None]
    loading = resolve_dataloading(cfg.dataloading, device)
    dtype = np.float16 if cfg.precision == 16 else np.float32
    written = []
    framewise = build_task(root.data).per_frame
    named = {
        split: {
            "method": method, "model": encoder_name(root), "dataset": root.data.dataset, "split": split,
            "imgsize": pipeline.size_tag, "precision": str(cfg.precision), "checkpoint": checkpoint,
        }
        for split in chosen
    }  # fmt: skip
    planned = {split: output_path(cfg, values) for split, values in named.items()}
    if len(set(planned.values())) < len(planned):  # each split would replace the last: train = test in one file
        raise ValueError(
            f"output_filename={cfg.output_filename!r} gives one file for the splits {', '.join(chosen)} "
            f"('{next(iter(planned.values()))}'), each replacing the last. Put {{split}} in it, or pass --split."
        )
    for split in chosen:
        dataset = available[split]
        assert dataset is not None
        path, values = planned[split], named[split]
        augment = split == "train" and not cfg.use_eval_transform_for_train
        loader = one_pass_loader(
            pipeline.train_dataset(dataset) if augment else pipeline.eval_dataset(dataset), loading, modality.collate
        )
        chunks, labels, frame_labels, lengths = [], [], [], []
        began = time.perf_counter()

        def forward(batch: Batch) -> torch.Tensor:
            if framewise:  # per-frame features (B, T, D): each video becomes one bag of its frames
                return frame_features(encoder, batch.inputs)
            inputs = input_mask(batch.inputs) if input_mask is not None else batch.inputs  # masked classification
            return encode(encoder, inputs, batch.valid)

        for batch, features in forward_loop(loader, forward, device, memory_format, f"extract {split}"):
            if framewise:
                assert batch.valid is not None
                for row, mask in enumerate(batch.valid.cpu()):
                    chunks.append(features[row][mask.to(features.device)].float().cpu().numpy().astype(dtype))
                    frame_labels.append(batch.targets[row][mask.to(batch.targets.device)].cpu().numpy())
                    lengths.append(int(mask.sum()))
                    labels.append(np.zeros(1, dtype=np.int64))
                continue
            chunks.append(features.float().cpu().numpy().astype(dtype))
            labels.append(batch.targets.cpu().numpy())
        seconds = time.perf_counter() - began
        stacked = np.concatenate(chunks)
        attrs = {**values, "glovita_version": __version__, "feature_dim": stacked.shape[1]}
        frames = None
        if framewise:
            frames = (np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), np.concatenate(frame_labels))
        write_features(path, stacked, np.concatenate(labels), sample_ids(dataset), cfg.compression, attrs, frames)
        shown = f"{len(lengths)} videos, {stacked.shape[0]} frames" if framewise else str(stacked.shape[0])
        print_line(f"{split}: {shown} x {stacked.shape[1]} features -> {path}")
        written.append(ExtractedFile(path, split, stacked.shape[0], stacked.shape[1], seconds))
    return written
