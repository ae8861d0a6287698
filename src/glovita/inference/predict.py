"""`glovita_infer`: predictions of a trained run on a split, a folder of images or a CSV of image paths."""

import csv
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image

from glovita.configs.infer import InferConfig
from glovita.datasets.factory import build_datasets, head_columns, sample_ids
from glovita.datasets.generic_image import IMAGE_SUFFIXES, Target
from glovita.datasets.sources import (
    UNKNOWN,
    Samples,
    check_image_run,
    image_file_samples,
    series_file_samples,
    video_dir_samples,
)
from glovita.inference.attention import AttentionRecord, branch_names, write_attention
from glovita.inference.masks import ImageWriter, LabelMapFiles, MaskWriter, PredictedImageFiles
from glovita.inference.restore import RestoredRun, load_run, rebuild_model
from glovita.inference.saliency import SaliencyWriter
from glovita.modalities.base import Modality, Pipeline
from glovita.models.composite import GlovitaModel
from glovita.models.saliency import cam_layer_of
from glovita.runtime.batch import Batch
from glovita.runtime.forward import autocast, forward_loop
from glovita.runtime.io import atomic_path, check_output_dir, save_json
from glovita.runtime.loaders import in_memory, one_pass_loader
from glovita.runtime.progress import print_line
from glovita.tasks.base import Task
from glovita.tasks.factory import build_named_tasks, build_task
from glovita.tasks.heads import HeadsMetrics
from glovita.training.resolve import resolve_dataloading, resolve_device


@dataclass(frozen=True)
class Prediction:
    predictions_csv: Path
    metrics_json: Path | None
    metrics: dict[str, float]
    num_samples: int
    seconds: float


def eval_pipeline(run: RestoredRun, modality: Modality, model: GlovitaModel) -> Pipeline:
    """The run's evaluation pipeline: as resolved_config.json recorded it, or derived again without that file."""
    channels = getattr(run.config.model.encoder, "input_channels", 3)
    return modality.pipeline(model.encoder.preprocessing, channels, run.resolved.get("augmentation") or None)


def _folder_samples(cfg: InferConfig, class_names: list[str], task: Task) -> list[tuple[Path, Target]]:
    folder = cfg.image_dir
    assert folder is not None
    if not folder.is_dir():
        raise NotADirectoryError(f"image_dir '{folder}' is not a folder.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"image_dir '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    parents = [p.parent.name if p.parent != folder else "" for p in paths]
    labelled = task.classifies and all(name in class_names for name in parents)
    return [(p, class_names.index(name) if labelled else UNKNOWN) for p, name in zip(paths, parents, strict=True)]


def _csv_samples(cfg: InferConfig, class_names: list[str], task: Task) -> list[tuple[Path, Target]]:
    table = cfg.image_csv
    assert table is not None
    if not table.is_file():
        raise FileNotFoundError(f"image_csv '{table}' does not exist.")
    with table.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if cfg.csv_path_column not in columns:
            raise ValueError(
                f"image_csv '{table}' has no column {cfg.csv_path_column!r} (columns: {', '.join(columns)}). "
                "Set --csv_path_column."
            )
        rows = list(reader)
    if cfg.csv_label_column is not None and cfg.csv_label_column not in columns:
        raise ValueError(
            f"image_csv '{table}' has no column {cfg.csv_label_column!r} (columns: {', '.join(columns)}). "
            "Set --csv_label_column to one of them, or leave it unset to predict without labels."
        )
    label_column = cfg.csv_label_column or "label"
    labelled = label_column in columns
    samples, missing = [], []
    for line, row in enumerate(rows, start=2):
        path = Path(row[cfg.csv_path_column])
        path = path if path.is_absolute() else table.parent / path
        if not path.is_file():
            missing.append(f"line {line}: {path}")
            continue
        where = f"image_csv '{table}' line {line}"
        target = task.parse_label(row[label_column], class_names, where) if labelled else UNKNOWN
        samples.append((path, target))
    if missing:
        raise FileNotFoundError(
            f"image_csv '{table}': {len(missing)} image file(s) do not exist ({'; '.join(missing[:5])}"
            f"{'; ...' if len(missing) > 5 else ''}). Paths are relative to the CSV's folder."
        )
    if not samples:
        raise ValueError(f"image_csv '{table}' lists no images.")
    return samples


def _readable(samples: list[tuple[Path, Target]], on_unreadable: str) -> list[tuple[Path, Target]]:
    """With on_unreadable=skip, drop files PIL cannot decode and warn with their names."""
    if on_unreadable == "fail":
        return samples
    kept, broken = [], []
    for path, target in samples:
        try:
            with Image.open(path) as image:
                image.verify()
            kept.append((path, target))
        except Exception:  # PIL raises many types for broken files
            broken.append(str(path))
    if broken:
        warnings.warn(
            f"Skipped {len(broken)} unreadable image file(s): {', '.join(broken[:20])}"
            f"{', ...' if len(broken) > 20 else ''}",
            stacklevel=2,
        )
    if not kept:
        raise ValueError("No readable image is left to predict.")
    return kept


def select_samples(cfg: InferConfig, run: RestoredRun, class_names: list[str]) -> Samples:
    """The samples of --split (default test), --image_dir or --image_csv."""
    root = run.config
    task = build_task(root.data)
    if cfg.image_dir is not None or cfg.image_csv is not None:
        check_image_run(root.data)
        found = _folder_samples(cfg, class_names, task) if cfg.image_dir else _csv_samples(cfg, class_names, task)
        found = _readable(found, cfg.on_unreadable)
        channels = getattr(root.model.encoder, "input_channels", 3)
        return image_file_samples(root.data, found, channels, str(cfg.image_dir or cfg.image_csv))
    if cfg.series_file is not None:
        return series_file_samples(root.data, cfg.series_file, run.resolved.get("augmentation") or {})
    if cfg.video_dir is not None:
        return video_dir_samples(root.data, cfg.video_dir, class_names, task, cfg.on_unreadable)
    split = cfg.split or "test"
    splits = build_datasets(root.data, getattr(root.model.encoder, "input_channels", 3), head_columns(root.model))
    chosen = {"train": splits.train, "val": splits.val, "test": splits.test}[split]
    if chosen is None or len(chosen) == 0:  # type: ignore[arg-type]
        raise ValueError(f"split={split!r}: {root.data.dataset} has no {split} samples here.")
    ids = sample_ids(chosen)
    source = f"{root.data.dataset} {split} split"
    return Samples(chosen, ids, True, source, splits.modality)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """Atomic CSV write (temp file + rename)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _label_text(target: object, class_names: list[str]) -> str:
    if isinstance(target, torch.Tensor):
        target = target.tolist()
    if isinstance(target, list | tuple):
        values = [float(v) for v in target]
        if class_names and all(v in (0.0, 1.0) for v in values):  # multilabel
            return "|".join(name for name, v in zip(class_names, values, strict=True) if v)
        return ";".join(f"{v:.6g}" for v in values)
    return class_names[int(target)] if class_names and isinstance(target, int | float) else str(target)


def check_arguments(cfg: InferConfig) -> None:
    """What can be checked before any model is built: the output folder can be made and written."""
    check_output_dir(cfg.output_dir)


@dataclass(frozen=True)
class _Predicted:
    probabilities: torch.Tensor
    """(N, K) class probabilities, or (N, K) regression values."""
    targets: list[torch.Tensor]
    metrics: dict[str, float]
    seconds: float
    attention: list[np.ndarray]
    """MIL heads: each bag's instance attention (N_i, A); empty for other heads."""
    frames: list[tuple[np.ndarray, np.ndarray]]
    """Framewise heads: each video's frame probabilities (T_i, K) and frame targets (T_i,); empty otherwise."""
    named: dict[str, tuple[Task, torch.Tensor]]
    """Named heads (model.heads): their task and their (N, K) probabilities or values."""
    masks: MaskWriter | ImageWriter | None = None
    """Segmentation runs: the label maps written, a row per image."""


def predict(cfg: InferConfig) -> Prediction:
    """Write OUTPUT_DIR/predictions.csv (and metrics.json with true labels); returns what was written."""
    check_arguments(cfg)
    run = load_run(cfg.checkpoint_path)
    root = run.config
    device = resolve_device(cfg.device, setting="device")
    precision = _precision(cfg, run, device)
    task = build_task(root.data)
    model = rebuild_model(run, cfg.use_ema)
    model.to(device).eval()
    class_names = list(run.resolved.get("class_names") or [])
    if task.classifies and len(class_names) != root.data.num_classes:
        class_names = [str(i) for i in range(root.data.num_classes)]
    samples = select_samples(cfg, run, class_names)
    predicted = _run_model(cfg, run, task, model, samples, device, precision)
    predictions_csv = cfg.output_dir / "predictions.csv"
    if predicted.masks is not None:
        rows = predicted.masks.rows
        if not rows:
            raise ValueError(
                f"No file was written for {samples.source}. Check that it holds {samples.modality.sample_noun}."
            )
        _write_csv(predictions_csv, predicted.masks.header(samples.labelled), rows)
        print_line(f"{len(rows)} {predicted.masks.what} -> {predicted.masks.folder}")
    elif task.per_frame:
        rows = _write_framewise(cfg, run, task, samples, class_names, predicted)
    else:
        rows = _rows(task, samples, class_names, predicted, run)
        header = [
            "id",
            *(["target"] if samples.labelled else []),
            *task.prediction_header(class_names, predicted.probabilities.shape[1]),
            *(f"{name}_{column}" for name, (head, values) in predicted.named.items()
              for column in head.prediction_header(_head_names(run, name, head), values.shape[1])),
        ]  # fmt: skip
        _write_csv(predictions_csv, header, rows)
    attention_dir = _write_attention_files(cfg, samples, predicted, rows, class_names)
    if attention_dir is not None:
        print_line(f"{len(predicted.attention)} attention files -> {attention_dir}")
    metrics_json = None
    if samples.labelled:
        metrics_json = cfg.output_dir / "metrics.json"
        provenance = {"source": samples.source, "checkpoint": str(run.checkpoint_path)}
        weights = {"weights": "ema" if cfg.use_ema else "model", "tta": cfg.tta, "precision": precision}
        save_json({**provenance, **weights, "num_samples": len(rows), **predicted.metrics}, metrics_json)
    shown = {k: v for k, v in predicted.metrics.items() if "_class_" not in k and not math.isnan(v)}
    summary = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
    print_line(f"{len(rows)} predictions -> {predictions_csv}" + (f"  ({summary})" if summary else ""))
    return Prediction(predictions_csv, metrics_json, predicted.metrics, len(rows), predicted.seconds)


def _precision(cfg: InferConfig, run: RestoredRun, device: torch.device) -> str:
    """--precision, with `run` read as the run's training.precision; a 16-mixed (CUDA) run predicted on CPU runs
    in 32 (float16 on CPU is slow, and CPU and CUDA results differ in the last digits anyway)."""
    if cfg.precision != "run":
        if cfg.precision == "16-mixed" and device.type != "cuda":
            raise ValueError("precision='16-mixed' needs CUDA. Use --precision 32 or bf16-mixed on CPU.")
        return cfg.precision
    precision = run.config.training.precision
    return "32" if precision == "16-mixed" and device.type != "cuda" else precision


def _run_model(
    cfg: InferConfig,
    run: RestoredRun,
    task: Task,
    model: GlovitaModel,
    samples: Samples,
    device: torch.device,
    precision: str,
) -> _Predicted:
    """The model over the samples through the run's evaluation pipeline (+ hflip TTA), with metrics when the
    samples are labelled."""
    root = run.config
    modality = samples.modality
    if cfg.tta != "none" and not modality.flips:
        raise ValueError(f"tta='hflip' flips images; this run predicts {modality.sample_noun}. Use --tta none.")
    memory_format = modality.memory_format(root.training.channels_last)
    if memory_format is not None:
        model.to(memory_format=memory_format)
    pipeline = eval_pipeline(run, modality, model)
    dataset = pipeline.eval_dataset(samples.dataset)
    loading = resolve_dataloading(cfg.dataloading, device, in_memory(samples.dataset))
    loader = one_pass_loader(dataset, loading, modality.collate)
    if cfg.tta != "none" and task.dense:
        raise ValueError("tta='hflip' averages class scores per sample; this run predicts label maps. Use --tta none.")
    masks: MaskWriter | ImageWriter | None = None
    if task.predicts_images:
        low, high = getattr(root.data, "target_range", (0.0, 1.0))
        files = cast(PredictedImageFiles, modality)
        masks = ImageWriter(cfg.output_dir / "images", samples.ids, files, (float(low), float(high)))
    elif task.dense:
        ignore_index = int(getattr(root.data, "ignore_index", 255))
        record = dict(run.resolved.get("augmentation") or {})
        writer = cast(LabelMapFiles, modality)
        masks = MaskWriter(cfg.output_dir / "masks", samples.ids, task.num_outputs, ignore_index, writer, record)
    if cfg.tta != "none" and root.model.heads:
        raise ValueError(
            "tta='hflip' averages the main head's probabilities; this run has model.heads. Use --tta none."
        )
    named = build_named_tasks(root.model, run.resolved.get("head_class_names") or {})
    metrics = HeadsMetrics(task.build_metrics(device), named, device, task.target_field) if samples.labelled else None
    named_all: dict[str, list[torch.Tensor]] = {head.name: [] for head in named}
    outputs_all: list[torch.Tensor] = []
    targets_all: list[torch.Tensor] = []
    attention_all: list[np.ndarray] = []
    frames_all: list[tuple[np.ndarray, np.ndarray]] = []
    saliency = _saliency_writer(cfg, run, task, model, samples, pipeline)
    attention_of = getattr(model.head, "instance_attention", None)  # heads over bags declare it
    if cfg.attention_format == "none":
        attention_of = None
    began = time.perf_counter()

    def forward(batch: Batch, flip: bool = False) -> Any:
        with autocast(precision, device):
            return model(batch.inputs.flip(-1) if flip else batch.inputs, batch.valid)

    for batch, outputs in forward_loop(loader, forward, device, memory_format, f"predict {samples.source}"):
        probabilities = model.head.predict(model.main_outputs(outputs))
        if cfg.tta == "hflip":
            probabilities = (probabilities + model.head.predict(forward(batch, flip=True))) / 2
        if metrics is not None:
            tta = cfg.tta != "none"
            scores = {"": task.scores_from_probabilities(probabilities)} if tta else model.logits_by_head(outputs)
            metrics.update(scores, batch)
        for name, values in model.named_predictions(outputs).items():
            named_all[name].append(values.float().cpu())
        if masks is not None:
            masks.add(probabilities, batch.read(task.target_field) if samples.labelled else None)
            continue
        if task.per_frame:  # (B, T, K) over each video's real frames
            assert batch.valid is not None
            for probs, targets, mask in zip(probabilities.cpu(), batch.targets.cpu(), batch.valid.cpu(), strict=True):
                frames_all.append((probs[mask].numpy(), targets[mask].numpy()))
            continue
        if saliency is not None:
            classes = batch.targets if samples.labelled else probabilities.argmax(dim=1)
            saliency.add(batch, saliency.maps(model, batch, classes))
        outputs_all.append(probabilities.cpu())
        targets_all.extend(list(batch.targets.cpu()))
        if attention_of is not None:
            attention, real = attention_of(model.main_outputs(outputs))
            for scores, mask in zip(attention.float().cpu(), real.cpu(), strict=True):
                attention_all.append(scores[:, mask].T.numpy())
    seconds = time.perf_counter() - began
    computed = metrics.compute() if metrics is not None else {}
    if saliency is not None:
        print_line(f"{saliency.written} saliency maps -> {saliency.folder}")
        computed.update(saliency.metrics())
    stacked = torch.cat(outputs_all) if outputs_all else torch.zeros(0, 0)
    named_stacked = {head.name: (head.task, torch.cat(named_all[head.name])) for head in named if named_all[head.name]}
    return _Predicted(stacked, targets_all, computed, seconds, attention_all, frames_all, named_stacked, masks)


def _saliency_writer(
    cfg: InferConfig,
    run: RestoredRun,
    task: Task,
    model: GlovitaModel,
    samples: Samples,
    pipeline: Pipeline,
) -> SaliencyWriter | None:
    """--saliency's writer, or None without it; runs it cannot explain are refused naming the flag."""
    if cfg.saliency == "none":
        return None
    root = run.config
    explainable = task.classifies and not task.dense and not task.per_frame and not task.multilabel
    drawable = pipeline.display is not None and pipeline.display_map is not None
    if not explainable or not drawable or model.head.consumes != "vector":
        raise ValueError(
            f"--saliency {cfg.saliency} explains one class per image or volume; this run is {root.data.task}/"
            f"{root.data.subtask} on {root.data.dataset} (head {root.model.head.head_type!r}). Use --saliency none."
        )
    assert pipeline.display is not None and pipeline.display_map is not None
    if cfg.tta != "none":
        raise ValueError("--saliency maps the image as it is; leave --tta none.")
    step = root.training.step
    layer_name = cfg.saliency_layer if cfg.saliency_layer is not None else getattr(step, "target_layer", None)
    layer = cam_layer_of(model.encoder, cfg.saliency, layer_name)
    ignore_index = int(getattr(root.data, "ignore_index", 255))
    return SaliencyWriter(
        cfg.output_dir / "saliency", samples.ids, cfg.saliency, layer, pipeline.display, pipeline.display_map,
        ignore_index,
    )  # fmt: skip


def _write_attention_files(
    cfg: InferConfig, samples: Samples, predicted: _Predicted, rows: list[list[object]], class_names: list[str]
) -> Path | None:
    """OUTPUT_DIR/attention/<slide_id>.h5|csv for every bag of a MIL run; the folder, or None for other runs."""
    if not predicted.attention:
        return None
    folder = cfg.output_dir / "attention"
    coords_of = getattr(samples.dataset, "coords", None)
    position = 2 if samples.labelled else 1
    for index, (sample_id, scores) in enumerate(zip(samples.ids, predicted.attention, strict=True)):
        coords = coords_of(index) if coords_of is not None else None
        if coords is not None and len(coords) != len(scores):
            coords = None
        row = rows[index]
        target = str(row[1]) if samples.labelled else None
        record = AttentionRecord(
            sample_id, scores, branch_names(scores.shape[1], class_names), coords, str(row[position]), target
        )
        write_attention(record, folder, cfg.attention_format)
    return folder


def _write_framewise(
    cfg: InferConfig, run: RestoredRun, task: Task, samples: Samples, class_names: list[str], predicted: _Predicted
) -> list[list[object]]:
    """predictions.csv: a row per video (id, frames, [frame accuracy], predicted segments); frame_predictions.csv:
    a row per frame (id, frame, [target], prediction_label, prob_<class>...). Frame numbers count every frame of
    the file (data.frame_stride apart)."""
    from glovita.metrics.framewise import segments

    stride = int((run.resolved.get("augmentation") or {}).get("frame_stride", 1))
    video_rows: list[list[object]] = []
    frame_rows: list[list[object]] = []
    for sample_id, (probs, targets) in zip(samples.ids, predicted.frames, strict=True):
        labels = probs.argmax(axis=1).tolist()
        runs = "|".join(f"{class_names[k]}:{a * stride}-{(b - 1) * stride}" for k, a, b in segments(labels))
        accuracy = [f"{float(np.mean(probs.argmax(axis=1) == targets)):.6g}"] if samples.labelled else []
        video_rows.append([sample_id, len(labels), *accuracy, runs])
        for t, (values, label) in enumerate(zip(probs.tolist(), labels, strict=True)):
            target = [class_names[int(targets[t])]] if samples.labelled else []
            frame_rows.append([sample_id, t * stride, *target, class_names[label], *(f"{v:.6g}" for v in values)])
    scored = ["frame_accuracy"] if samples.labelled else []
    _write_csv(cfg.output_dir / "predictions.csv", ["id", "frames", *scored, "predicted_segments"], video_rows)
    header = ["id", "frame", *(["target"] if samples.labelled else []), *task.prediction_header(class_names, 0)]
    _write_csv(cfg.output_dir / "frame_predictions.csv", header, frame_rows)
    print_line(f"{len(frame_rows)} frame predictions -> {cfg.output_dir / 'frame_predictions.csv'}")
    return video_rows


def _rows(
    task: Task, samples: Samples, class_names: list[str], predicted: _Predicted, run: RestoredRun
) -> list[list[object]]:
    """predictions.csv rows: id, [target], [predicted label], then one value per class or output."""
    rows = []
    for sample_id, target, values in zip(samples.ids, predicted.targets, predicted.probabilities.tolist(), strict=True):
        row: list[object] = [sample_id]
        if samples.labelled:
            row.append(_label_text(target, class_names))
        row.extend(task.prediction_values(values, class_names))
        rows.append(row)
    for name, (head, values) in predicted.named.items():  # named heads' columns, in the header's order
        names = _head_names(run, name, head)
        for row, head_values in zip(rows, values.tolist(), strict=True):
            row.extend(head.prediction_values(head_values, names))
    return rows


def _head_names(run: RestoredRun, name: str, task: Task) -> list[str]:
    """A named head's class names: a manifest column's names (head_class_names), else its class indices."""
    return list((run.resolved.get("head_class_names") or {}).get(name) or [str(k) for k in range(task.num_outputs)])
