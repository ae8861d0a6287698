"""A trained model rebuilt from its run directory: config.json next to checkpoints/, weights from a checkpoint.

Shared by glovita_infer and glovita_extract_features, so both read runs the same way and fail the same way.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glovita.configs.model import ModelConfig
from glovita.configs.peft import PeftConfig
from glovita.configs.root import RootConfig
from glovita.models.composite import GlovitaModel
from glovita.training.checkpoints import load_checkpoint
from glovita.training.run_dir import load_run_config, without_pretrained_weights

__all__ = ["RestoredRun", "load_run", "load_run_config", "load_weights", "rebuild_model", "without_pretrained_weights"]


@dataclass(frozen=True)
class RestoredRun:
    run_dir: Path
    config: RootConfig
    resolved: dict[str, Any]
    """resolved_config.json ({} for a run directory without it)."""
    checkpoint: dict[str, Any]
    checkpoint_path: Path


def _with_derived_values(config: RootConfig, resolved: dict[str, Any], run_dir: Path) -> RootConfig:
    """The config with what training derived from the data filled in: the feature dim of a precomputed encoder
    left unset (resolved_config.json's encoder_out_dim)."""
    encoder = config.model.encoder
    if getattr(encoder, "feature_dim", 0) is not None:  # only the precomputed encoder may leave it unset
        return config
    if not resolved.get("encoder_out_dim"):
        raise ValueError(
            f"'{run_dir}' has no resolved_config.json with encoder_out_dim, and its config.json leaves "
            "model.encoder.feature_dim unset, so the feature dimension is unknown."
        )
    from glovita.training.resolve import with_feature_dim

    return with_feature_dim(config, int(resolved["encoder_out_dim"]), f"'{run_dir}'")


def load_run(checkpoint_path: Path) -> RestoredRun:
    """Config, derived values and checkpoint of the run that wrote `checkpoint_path` (RUN/checkpoints/X.pt)."""
    checkpoint_path = checkpoint_path.resolve()
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"checkpoint_path '{checkpoint_path}' does not exist.")
    run_dir = checkpoint_path.parent.parent
    config = load_run_config(run_dir)
    resolved_file = run_dir / "resolved_config.json"
    resolved = json.loads(resolved_file.read_text()) if resolved_file.is_file() else {}
    config = _with_derived_values(config, resolved, run_dir)
    return RestoredRun(run_dir, config, resolved, load_checkpoint(checkpoint_path), checkpoint_path)


def rebuild_model(
    run: RestoredRun,
    use_ema: bool = False,
    model_cfg: ModelConfig | None = None,
    peft: PeftConfig | None = None,
    weights: bool = True,
) -> GlovitaModel:
    """The model of a trained run, as glovita_infer, glovita_export and glovita_extract_features rebuild it: its
    config.json's model (or `model_cfg`, e.g. with another feature pooling) and PEFT (or `peft`), the encoder built
    empty (every weight comes from the checkpoint), then the checkpoint's weights (or EMA weights) unless `weights`
    is False. Training-only settings (label smoothing, class weights) do not change a model's outputs."""
    from glovita.models.factory import build_model, standardizes_features
    from glovita.tasks.factory import build_task

    root = run.config
    task = build_task(root.data)
    model = build_model(
        without_pretrained_weights(model_cfg if model_cfg is not None else root.model),
        peft if peft is not None else root.peft,
        root.data.num_classes,
        label_smoothing=0.0,
        multilabel=task.multilabel,
        standardize_features=standardizes_features(root.data),
        image_targets=task.predicts_images,
    )
    if root.model.input_mask.checkpoint_path is not None:
        from glovita.training.input_mask import rebuild_input_mask

        model.input_mask = rebuild_input_mask(root.model.input_mask, run.resolved.get("input_mask"), str(run.run_dir))
    if weights:
        load_weights(model, run, use_ema)
    return model


def load_weights(model: GlovitaModel, run: RestoredRun, use_ema: bool = False) -> None:
    """Put the checkpoint's weights (or its EMA weights) into `model`; a mismatch names the file and keys."""
    key = "ema" if use_ema else "model"
    if key not in run.checkpoint:
        hint = " (its run did not set training.ema_decay)" if use_ema else ""
        raise ValueError(f"Checkpoint '{run.checkpoint_path}' holds no '{key}' weights{hint}.")
    try:
        model.load_state_dict(run.checkpoint[key])
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:3] if line.strip()]
        raise ValueError(
            f"Checkpoint '{run.checkpoint_path}' does not fit the model its run's config.json describes "
            f"({'; '.join(lines)[:400]}). Was the checkpoint copied from another run?"
        ) from err
