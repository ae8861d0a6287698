"""glovita_inspect: a run's resolved settings, its layers (forward hooks on one batch) and that batch's statistics
through the run's own datasets, transforms, sampler and model; the batch drawn as a PNG grid beside a JSON file."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from glovita.configs.inspect_run import InspectConfig
from glovita.configs.root import RootConfig
from glovita.datasets.factory import DatasetSplits, build_datasets
from glovita.models.composite import GlovitaModel
from glovita.runtime.batch import Batch
from glovita.runtime.io import atomic_path, save_json
from glovita.runtime.loaders import EpochPlan, make_loader


@dataclass(frozen=True)
class Inspection:
    details: Path
    """inspect_<split>.json: source, resolved settings, layer table and batch statistics."""
    grid: Path | None
    """inspect_<split>.png, or None where the samples are not pictures or curves (feature vectors)."""
    layers: list[dict[str, Any]]
    batch: dict[str, Any]


def inspect(cfg: InspectConfig, root: RootConfig | None) -> Inspection:
    """Build the run (a run directory's config and checkpoint, or `root` untrained), take one batch of cfg.split,
    print the settings, the layer table and the batch statistics, and write the grid and the JSON."""
    model, root, splits, resolved, source, default_dir = _model_and_data(cfg, root)
    channels = int(getattr(root.model.encoder, "input_channels", 3))
    pipeline = splits.modality.pipeline(model.encoder.preprocessing, channels)
    batch = _first_batch(cfg, root, splits, pipeline)
    model.eval()
    layers, outputs = layer_table(model, batch, cfg.depth)
    with torch.no_grad():
        loss, _ = model.loss_terms(outputs, batch)
        logits = model.head.logits(model.main_outputs(outputs))
    stats = {
        "samples": len(batch),
        "inputs": tensor_stats(batch.inputs),
        "targets": tensor_stats(batch.targets),
        "outputs": tensor_stats(logits),
        "loss": float(loss),
        **{f"field {name}": tensor_stats(value) for name, value in batch.fields.items()},
    }
    folder = cfg.output_dir or default_dir
    details = folder / f"inspect_{cfg.split}.json"
    save_json({"source": source, "split": cfg.split, "resolved": resolved, "layers": layers, "batch": stats}, details)
    grid = _grid(cfg, batch, logits, pipeline, splits, folder / f"inspect_{cfg.split}.png", source)
    _print(source, resolved, layers, stats, cfg.split)
    return Inspection(details, grid, layers, stats)


def _model_and_data(
    cfg: InspectConfig, root: RootConfig | None
) -> tuple[GlovitaModel, RootConfig, DatasetSplits, dict[str, Any], str, Path]:
    """(model, config, splits, resolved settings, what was inspected, the default output folder)."""
    if root is None:
        from glovita.inference.restore import load_run, rebuild_model

        if cfg.run is None:
            raise ValueError("Name a run directory (experiments/digits/my_run/0), or give glovita_train's flags.")
        path = cfg.run if cfg.run.suffix == ".pt" else cfg.run / "checkpoints" / cfg.checkpoint
        if not path.is_file():
            where = cfg.run if cfg.run.suffix == ".pt" else cfg.run / "checkpoints"
            raise FileNotFoundError(
                f"'{path}' does not exist. Name a run directory (with checkpoints/{cfg.checkpoint}) or a checkpoint; "
                f"--checkpoint picks another file of '{where}'."
            )
        run = load_run(path)
        model = rebuild_model(run)
        channels = int(getattr(run.config.model.encoder, "input_channels", 3))
        splits = build_datasets(run.config.data, channels)
        resolved = run.resolved or {"config": run.config.model_dump(mode="json")}
        return model, run.config, splits, resolved, f"{run.run_dir} ({path.name})", run.run_dir
    from glovita.models.factory import build_model, standardizes_features
    from glovita.tasks.factory import build_task
    from glovita.training.resolve import with_feature_dim

    channels = int(getattr(root.model.encoder, "input_channels", 3))
    splits = build_datasets(root.data, channels)
    root = with_feature_dim(root, splits.feature_dim, splits.description)
    model = build_model(
        root.model,
        root.peft,
        root.data.num_classes,
        root.task.label_smoothing,
        build_task(root.data).multilabel,
        standardize_features=standardizes_features(root.data),
        ignore_index=int(getattr(root.data, "ignore_index", 255)),
    )
    if splits.standardization is not None:
        from glovita.models.img_encoder.precomputed import PrecomputedEncoder

        cast(PrecomputedEncoder, model.encoder).set_statistics(*splits.standardization)
    resolved = {"config": root.model_dump(mode="json"), "class_names": splits.class_names}
    return model, root, splits, resolved, "the given flags (untrained model)", Path.cwd()


def _first_batch(cfg: InspectConfig, root: RootConfig, splits: DatasetSplits, pipeline: Any) -> Batch:
    """The split's first batch: the run's first training batch (its seeded order and augmentation of epoch 0), or
    the first evaluation batch of val / test."""
    modality = splits.modality
    batch_size = root.dataloading.batch_size
    if cfg.split == "train":
        from glovita.training.resolve import balanced_sample_weights

        weights = (
            balanced_sample_weights(splits.train_targets, root.data.num_classes)
            if root.task.class_balanced_sampling
            else None
        )
        plan = EpochPlan(len(splits.train), root.training.seed, shuffle=True, weights=weights)  # type: ignore[arg-type]
        sampler = modality.train_sampler(plan, batch_size, False)
        dataset = pipeline.train_dataset(splits.train)
    else:
        chosen = splits.val if cfg.split == "val" else splits.test
        if chosen is None or len(chosen) == 0:  # type: ignore[arg-type]
            raise ValueError(f"--split {cfg.split}: the dataset has no {cfg.split} split. Choose train or val.")
        sampler, dataset = None, pipeline.eval_dataset(chosen)
    loader = make_loader(dataset, batch_size, sampler, 0, False, False, None, False, collate=modality.collate)
    return next(iter(loader))


def shape_text(value: Any) -> str:
    """A module output's shape: (8, 64, 16, 16) for a tensor; [..] / {..} for sequences and mappings of them."""
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, list | tuple):
        inner = ", ".join(shape_text(v) for v in value[:3])
        return f"[{inner}{', ...' if len(value) > 3 else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shape_text(v)}" for k, v in list(value.items())[:3]) + "}"
    fields = getattr(value, "__dataclass_fields__", None)
    if fields:
        return f"{type(value).__name__}(" + ", ".join(f"{k}: {shape_text(getattr(value, k))}" for k in fields) + ")"
    return type(value).__name__


def layer_table(model: GlovitaModel, batch: Batch, depth: int) -> tuple[list[dict[str, Any]], Any]:
    """One forward pass with hooks on every module down to `depth`: rows in the order the modules first ran (module,
    type, output shape, calls, parameters, trainable parameters); modules that did not run come last. Returns the
    rows and the model's outputs."""
    rows: dict[str, dict[str, Any]] = {}
    handles = []
    for name, module in model.named_modules():
        if not name or name.count(".") + 1 > depth:
            continue

        def before(_module: nn.Module, _args: Any, name: str = name) -> None:
            row = rows.setdefault(name, {"module": name, "output": None, "calls": 0})
            row["calls"] += 1

        def after(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            if rows[name]["output"] is None:
                rows[name]["output"] = shape_text(output)

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.no_grad():
            outputs = model(batch.inputs, batch.valid)
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    for name, module in modules.items():  # modules that did not run (an empty ModuleDict is left out)
        if name and name.count(".") + 1 <= depth and name not in rows and any(True for _ in module.parameters()):
            rows[name] = {"module": name, "output": "not run", "calls": 0}
    for name, row in rows.items():
        module = modules[name]
        row["type"] = type(module).__name__
        row["parameters"] = sum(p.numel() for p in module.parameters())
        row["trainable"] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return list(rows.values()), outputs


def tensor_stats(tensor: torch.Tensor) -> dict[str, Any]:
    """Shape, dtype, and mean / std / min / max (floats, with the same per channel when dim 1 has 2 to 16 entries)
    or value counts (integers, booleans: up to 20 values)."""
    stats: dict[str, Any] = {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
    if tensor.numel() == 0:
        return stats
    if tensor.is_floating_point():
        values = tensor.detach().float()
        finite = values[torch.isfinite(values)]
        stats.update(_moments(finite))
        stats["non_finite"] = int(values.numel() - finite.numel())
        if values.ndim >= 3 and 2 <= values.shape[1] <= 16:
            per_channel = values.transpose(0, 1).reshape(values.shape[1], -1)
            stats["per_channel"] = [_moments(channel[torch.isfinite(channel)]) for channel in per_channel]
        return stats
    distinct, counts = torch.unique(tensor.detach().cpu(), return_counts=True)
    if len(distinct) <= 20:
        stats["counts"] = {str(v.item()): int(c) for v, c in zip(distinct, counts, strict=True)}
    else:
        stats.update(_moments(tensor.detach().float()))
    return stats


def _moments(values: torch.Tensor) -> dict[str, float]:
    if values.numel() == 0:
        return {}
    return {
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()) if values.numel() > 1 else 0.0, 6),
        "min": round(float(values.min()), 6),
        "max": round(float(values.max()), 6),
    }


def _label(value: torch.Tensor, class_names: list[str] | None) -> str:
    """A sample's target or prediction in a few characters: a class name, or up to 3 values."""
    if value.numel() == 1 and not value.is_floating_point():
        index = int(value)
        return class_names[index] if class_names and 0 <= index < len(class_names) else str(index)
    flat = value.detach().float().flatten()
    shown = ", ".join(f"{float(v):.3g}" for v in flat[:3])
    return f"[{shown}{', ...' if flat.numel() > 3 else ''}]"


def _grid(
    cfg: InspectConfig,
    batch: Batch,
    logits: torch.Tensor,
    pipeline: Any,
    splits: DatasetSplits,
    path: Path,
    source: str,
) -> Path | None:
    """The first samples of the batch as the model sees them (after the transforms), each titled with its target
    and the model's output (the top class where the target is a class index). None for feature vectors."""
    count = min(cfg.num_samples, len(batch))
    curves = getattr(splits.modality, "draws_curves", False)
    if pipeline.display is None and not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = splits.class_names
    picks_class = batch.targets.ndim == 1 and not batch.targets.is_floating_point() and logits.ndim == 2
    cols = min(count, 4)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        ax = axes.flat[i]
        view = batch.inputs[i].float().cpu()
        if curves:
            ax.axis("on")
            for channel in view[:4]:
                ax.plot(channel.numpy(), linewidth=0.8)
            ax.tick_params(labelsize=6)
        else:
            shown = np.asarray(pipeline.display(view))
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        output = _label(logits[i].argmax(), classes) if picks_class else _label(logits[i], None)
        ax.set_title(f"target {_label(batch.targets[i], classes)}\noutput {output}", fontsize=7)
    fig.suptitle(f"{source}: first {cfg.split} batch as the model sees it", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _print(
    source: str, resolved: dict[str, Any], layers: list[dict[str, Any]], stats: dict[str, Any], split: str
) -> None:
    """The resolved settings, the layer table and the batch statistics, on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width), highlight=False)
    console.print(f"[bold]Inspecting[/bold] {source}")
    console.print("Resolved settings:")
    console.print(json.dumps(resolved, indent=1, default=str), markup=False, soft_wrap=True)
    table = Table(title="Layers (in the order they ran on one batch)")
    for column, justify in (("module", "left"), ("type", "left"), ("output shape", "left"), ("calls", "right"),
                            ("parameters", "right"), ("trainable", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in layers:
        table.add_row(
            row["module"],
            row["type"],
            str(row["output"]),
            str(row["calls"]),
            f"{row['parameters']:,}",
            f"{row['trainable']:,}",
        )
    console.print(table)
    console.print(f"First {split} batch ({stats['samples']} samples), loss {stats['loss']:.4f}:")
    for name in ("inputs", "targets", "outputs", *(k for k in stats if k.startswith("field "))):
        shown = {k: v for k, v in stats[name].items() if k != "per_channel"}
        console.print(f"  {name}: {json.dumps(shown)}", markup=False, soft_wrap=True)
