"""model.input_mask: the trained segmenter of masked classification, read from its run once (training) and rebuilt
from the classifier's own records afterwards (glovita_infer, glovita_export: its weights are in their checkpoint)."""

import json
from pathlib import Path
from typing import Any

from glovita.configs.model import InputMaskConfig
from glovita.configs.root import RootConfig
from glovita.models.input_mask import InputMask


def _build_segmenter(record: dict[str, Any]) -> Any:
    from glovita.models.factory import build_model
    from glovita.training.run_dir import without_pretrained_weights

    seg = RootConfig.model_validate(record["config"])
    ignore_index = int(getattr(seg.data, "ignore_index", 255))
    model = without_pretrained_weights(seg.model)
    return build_model(model, seg.peft, seg.data.num_classes, 0.0, ignore_index=ignore_index)


def _input_mask(record: dict[str, Any], cfg: InputMaskConfig, input_stats: tuple[list[float], list[float]]) -> Any:
    size = (int(record["image_size"][0]), int(record["image_size"][1]))
    stats = ([float(v) for v in record["mean"]], [float(v) for v in record["std"]])
    return InputMask(_build_segmenter(record), cfg.mode, cfg.threshold, size, stats, input_stats)


def build_input_mask(
    cfg: InputMaskConfig, input_stats: tuple[tuple[float, ...], tuple[float, ...]] | None, input_channels: int
) -> tuple[InputMask, dict[str, Any]]:
    """The segmenter of `cfg.checkpoint_path` with its weights, frozen, and the record that rebuilds it
    (resolved_config.json's input_mask): its run's config, input size and statistics."""
    from glovita.training.checkpoints import load_checkpoint
    from glovita.training.run_dir import load_run_config

    assert cfg.checkpoint_path is not None
    path = Path(cfg.checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.input_mask.checkpoint_path: '{path}' does not exist. Point it at a segmentation run's "
            "checkpoints/best.pt."
        )
    run_dir = path.resolve().parent.parent
    seg = load_run_config(run_dir)
    if seg.model.head.consumes != "pyramid":
        raise ValueError(
            f"model.input_mask.checkpoint_path: '{path}' is a {seg.data.task} run (head {seg.model.head.head_type!r}),"
            " not a segmenter. Point it at a checkpoint of a --data.task Segmentation run."
        )
    if input_stats is None:
        raise ValueError("model.input_mask masks images normalised by known statistics; this dataset has none.")
    channels = int(getattr(seg.model.encoder, "input_channels", 3))
    if channels != input_channels:
        raise ValueError(
            f"model.input_mask: the segmenter of '{path}' takes {channels}-channel images and this classifier "
            f"{input_channels}. Set --model.encoder.input_channels {channels} or train a matching segmenter."
        )
    resolved_file = run_dir / "resolved_config.json"
    if not resolved_file.is_file():
        raise FileNotFoundError(f"model.input_mask: '{resolved_file}' is missing: the segmenter's input size and "
                                "statistics are unknown. Was the run directory copied in part?")  # fmt: skip
    pipeline = json.loads(resolved_file.read_text())["augmentation"]
    record = {
        "checkpoint_path": str(path),
        "config": seg.model_dump(mode="json"),
        "image_size": [int(pipeline["image_size"])] * 2,
        "mean": pipeline["mean"],
        "std": pipeline["std"],
        "input_mean": list(input_stats[0]),
        "input_std": list(input_stats[1]),
    }
    mask = _input_mask(record, cfg, (record["input_mean"], record["input_std"]))
    checkpoint = load_checkpoint(path)
    try:
        mask.segmenter.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        raise ValueError(f"model.input_mask.checkpoint_path: '{path}' does not fit its run's config.json "
                         f"({str(err).splitlines()[0][:200]}).") from err  # fmt: skip
    return mask, record


def rebuild_input_mask(cfg: InputMaskConfig, record: dict[str, Any] | None, where: str) -> InputMask:
    """The segmenter as a trained classifier recorded it (resolved_config.json's input_mask), without weights: the
    classifier's checkpoint holds them."""
    if not record:
        raise ValueError(f"{where}: model.input_mask is set but resolved_config.json records no input_mask.")
    return _input_mask(record, cfg, (record["input_mean"], record["input_std"]))
