"""The toy step: manual optimization of the model and of a critic it owns, on batches of an extra loader."""

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from glovita.configs.root import RootConfig
from glovita.runtime.batch import Batch
from glovita.training.steps.base import MODEL_OPTIMIZER, ExtraOptimizer, StepContext, StepFacts, StepOutput
from glovita_toy.config import ToyAlternatingStepConfig
from glovita_toy.data import ToySignals


class ToyAlternatingStep:
    """Per batch: n_critic critic updates (it scores the model's outputs on unlabeled signals), then one update of
    the model on its head's loss. Evaluation logs the critic's mean score (val_critic_score)."""

    eval_needs_grad = False
    manual_optimization = True

    def __init__(self, cfg: ToyAlternatingStepConfig, facts: StepFacts) -> None:
        self.n_critic = cfg.n_critic
        self.critic = nn.Linear(facts.task.num_outputs, 1)
        self.optimizer = torch.optim.SGD(self.critic.parameters(), lr=cfg.critic_lr)
        self.loader = facts.training_loader(ToySignals(24, 32, seed=4), "unlabeled")
        self.critic_updates = 0

    def epoch_length(self, batches: int) -> int:
        return batches

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {"critic": (self.optimizer, None)}

    def extra_loaders(self) -> dict[str, DataLoader]:
        return {"unlabeled": self.loader}

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        critic = context.modules["critic"]
        for _ in range(self.n_critic):
            unlabeled = context.draw("unlabeled")
            with torch.no_grad(), context.autocast():
                scores = model(unlabeled.inputs).float()
            critic_loss = (critic(scores.softmax(-1)) - 1).pow(2).mean()
            context.backward(critic_loss)
            context.optimizer_step("critic")
            self.critic_updates += 1
        with context.autocast():
            outputs = model(batch.inputs)
        loss = context.module.head.loss(outputs, batch)
        context.backward(loss)
        context.optimizer_step(MODEL_OPTIMIZER)
        return StepOutput(loss, outputs, logs={"critic_loss": critic_loss.detach()})

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        with context.autocast():
            outputs = model(batch.inputs)
        score = context.modules["critic"](outputs.float().softmax(-1)).mean()
        return StepOutput(context.module.head.loss(outputs, batch), outputs, logs={"critic_score": score})

    def state_dict(self) -> dict[str, Any]:
        return {"critic_updates": self.critic_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic_updates = int(state["critic_updates"])


def build_toy_step(cfg: ToyAlternatingStepConfig, root: RootConfig, facts: StepFacts) -> ToyAlternatingStep:
    return ToyAlternatingStep(cfg, facts)
