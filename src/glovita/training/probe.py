"""Choosing L-BFGS's L2 strength on the validation split (the linear-probe protocol of CLIP-style evaluations)."""

import copy
import math
from typing import Any

from torch.utils.data import DataLoader

from glovita.runtime.progress import print_line
from glovita.training.loop import Trainer


def select_weight_decay(
    trainer: Trainer, train: DataLoader, val: DataLoader, grid: tuple[float, ...], epochs: int
) -> tuple[float, list[dict[str, Any]]]:
    """Solve from the same starting weights for each weight decay of `grid` (up to `epochs` L-BFGS epochs, until
    converged), score each on `val` by the trainer's best-checkpoint metric, and leave the trainer at its starting
    weights with a fresh solver set to the best value. Returns that value and one row per candidate."""
    weights = copy.deepcopy(trainer.module.state_dict())
    solver = copy.deepcopy(trainer.optimizer.state_dict())
    key, maximise = trainer.best_metric, trainer.options.best_mode == "max"
    rows: list[dict[str, Any]] = []
    for weight_decay in grid:
        trainer.module.load_state_dict(weights)
        trainer.optimizer.load_state_dict(solver)
        trainer.optimizer.param_groups[0]["weight_decay"] = weight_decay
        iterations = 0
        for epoch in range(epochs):
            out = trainer.train_epoch(train, epoch, epochs)
            iterations += int(out["logs"]["train_lbfgs_iterations"])
            if out["converged"]:
                break
        result = trainer.evaluate(val, f"validate weight_decay={weight_decay:g}")
        scores = {"val_loss": result.loss, **{f"val_{k}": v for k, v in result.metrics.items()}}
        rows.append({"weight_decay": weight_decay, key: scores[key], "iterations": iterations})
        print_line(f"L2 grid: weight_decay {weight_decay:g}  {key} {scores[key]:.4f}  ({iterations} iterations)")
    valid = [row for row in rows if not math.isnan(row[key])]
    if not valid:
        raise FloatingPointError(f"optimizer.l2_grid: {key} is NaN for every weight decay; check the features.")
    best = (max if maximise else min)(valid, key=lambda row: row[key])["weight_decay"]
    trainer.module.load_state_dict(weights)
    trainer.optimizer.load_state_dict(solver)
    trainer.optimizer.param_groups[0]["weight_decay"] = best
    print_line(f"L2 grid: weight_decay {best:g} chosen by {key}; training with it.")
    return best, rows
