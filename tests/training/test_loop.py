"""The Trainer with a fake step: it calls the step, owns accumulation and checkpoints the step's state."""

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from glovita.logging.none import NoneLogger
from glovita.modalities.features import InstanceModality
from glovita.models.composite import GlovitaModel
from glovita.models.heads.classification import ClassificationHead
from glovita.models.img_encoder.precomputed import PrecomputedEncoder
from glovita.runtime.batch import Batch
from glovita.tasks.classification import ClassificationTask
from glovita.tasks.heads import HeadsMetrics
from glovita.training.checkpoints import CheckpointWriter
from glovita.training.loop import Trainer, TrainerOptions
from glovita.training.steps.base import ExtraOptimizer, StepContext, StepOutput


class CountingStep:
    """Squared-output loss; counts its calls, records the gradient mode of evaluation, keeps a counter as state."""

    manual_optimization = False

    def __init__(self, eval_needs_grad: bool) -> None:
        self.eval_needs_grad = eval_needs_grad
        self.train_calls = 0
        self.eval_grad_modes: list[bool] = []

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        self.train_calls += 1
        outputs = model(batch.inputs, batch.valid)
        return StepOutput((outputs**2).mean(), outputs)

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        self.eval_grad_modes.append(torch.is_grad_enabled())
        outputs = model(batch.inputs, batch.valid)
        return StepOutput(context.module.head.loss(outputs, batch), outputs)

    def epoch_length(self, batches: int) -> int:
        return batches

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {}

    def extra_loaders(self) -> dict[str, DataLoader]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"train_calls": self.train_calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_calls = state["train_calls"]


def _trainer(
    step: CountingStep,
    tmp_path: Path,
    accumulate: int,
    records: list[dict[str, Any]] | None = None,
    batches_per_epoch: int | None = None,
) -> tuple[Trainer, DataLoader, list[int]]:
    torch.manual_seed(0)
    model = GlovitaModel(PrecomputedEncoder(4), ClassificationHead(4, 2, 0.0, None, 0.0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps: list[int] = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    samples = [(torch.randn(4), torch.tensor(i % 2)) for i in range(10)]
    loader = DataLoader(samples, batch_size=2, collate_fn=InstanceModality().collate)
    trainer = Trainer(
        module=model,
        step=step,
        optimizer=optimizer,
        scheduler=scheduler,
        device=torch.device("cpu"),
        options=TrainerOptions(
            accumulate_grad_batches=accumulate,
            best_metric="val_loss",
            best_mode="min",
            batches_per_epoch=batches_per_epoch,
        ),  # fmt: skip
        make_metrics=lambda: HeadsMetrics(
            ClassificationTask(2).build_metrics(torch.device("cpu")), [], torch.device("cpu")
        ),
        checkpoints=CheckpointWriter(tmp_path / "checkpoints", 0, None),
        logger=NoneLogger(),
        on_epoch_end=(records.append if records is not None else lambda _: None),
    )
    return trainer, loader, steps


def test_trainer_calls_the_step_and_owns_accumulation(tmp_path: Path) -> None:
    step = CountingStep(eval_needs_grad=False)
    trainer, loader, optimizer_steps = _trainer(step, tmp_path, accumulate=2)
    before = trainer.module.head.net[-1].weight.detach().clone()
    trainer.fit(loader, loader, epochs=2)
    assert step.train_calls == 10  # 5 batches x 2 epochs
    assert len(optimizer_steps) == 6  # ceil(5 / 2) optimizer steps per epoch
    assert not torch.equal(before, trainer.module.head.net[-1].weight)  # the step's loss was minimised
    assert step.eval_grad_modes and not any(step.eval_grad_modes)


def test_evaluation_follows_the_steps_gradient_policy(tmp_path: Path) -> None:
    step = CountingStep(eval_needs_grad=True)
    trainer, loader, _ = _trainer(step, tmp_path, accumulate=1)
    result = trainer.evaluate(loader, "validate")
    assert step.eval_grad_modes == [True] * 5
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and result.loss > 0


def test_the_steps_state_is_checkpointed_and_restored(tmp_path: Path) -> None:
    step = CountingStep(eval_needs_grad=False)
    trainer, loader, _ = _trainer(step, tmp_path, accumulate=1)
    trainer.fit(loader, loader, epochs=1)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["step"] == {"train_calls": 5}
    fresh = CountingStep(eval_needs_grad=False)
    resumed, _, _ = _trainer(fresh, tmp_path / "again", accumulate=1)
    resumed.load_state_dict(checkpoint)
    assert fresh.train_calls == 5 and resumed.state.epoch == 1


class CriticStep(CountingStep):
    """A step owning a module with its own optimizer (as an adversarial step owns its discriminator)."""

    def __init__(self) -> None:
        super().__init__(eval_needs_grad=False)
        self.critic = nn.Linear(2, 1)
        self.critic_optimizer = torch.optim.SGD(self.critic.parameters(), lr=0.1, momentum=0.9)

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        out = super().train_step(model, batch, context)
        critic_loss = (self.critic(out.outputs.detach()) - 1).pow(2).mean()
        logs = {"critic_loss": critic_loss}
        return StepOutput(out.loss, out.outputs, logs=logs, extra_losses={"critic": critic_loss})

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {"critic": (self.critic_optimizer, None)}


def test_the_trainer_steps_and_checkpoints_a_steps_own_optimizer(tmp_path: Path) -> None:
    step = CriticStep()
    records: list[dict[str, Any]] = []
    trainer, loader, model_steps = _trainer(step, tmp_path, accumulate=1, records=records)
    critic_before = step.critic.weight.detach().clone()
    trainer.fit(loader, loader, epochs=1)
    assert len(model_steps) == 5 and not torch.equal(critic_before, step.critic.weight)
    assert records[0]["train_critic_loss"] > 0  # the step's logs, averaged over the epoch
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    momentum = checkpoint["extra_optimizers"]["critic"]["optimizer"]["state"][0]["momentum_buffer"]
    fresh = CriticStep()
    resumed, _, _ = _trainer(fresh, tmp_path / "again", accumulate=1)
    resumed.load_state_dict(checkpoint)
    torch.testing.assert_close(fresh.critic_optimizer.state_dict()["state"][0]["momentum_buffer"], momentum)


class AlternatingStep(CountingStep):
    """Manual optimization as a GAN trains: `n_critic` updates of its own critic (a module it owns, on batches it
    draws from an extra loader) per update of the model; logs a critic score in evaluation."""

    manual_optimization = True

    def __init__(self, extra: DataLoader, n_critic: int) -> None:
        super().__init__(eval_needs_grad=False)
        self.critic = nn.Linear(2, 1)
        self.critic_optimizer = torch.optim.SGD(self.critic.parameters(), lr=0.05, momentum=0.9)
        self.extra, self.n_critic = extra, n_critic
        self.drawn: list[torch.Tensor] = []

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {"critic": (self.critic_optimizer, None)}

    def extra_loaders(self) -> dict[str, DataLoader]:
        return {"unlabeled": self.extra}

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        critic = context.modules["critic"]
        for _ in range(self.n_critic):
            other = context.draw("unlabeled")
            self.drawn.append(other.inputs)
            fake = model(other.inputs, other.valid).detach()
            critic_loss = critic(fake).mean() - critic(torch.ones_like(fake)).mean()
            context.backward(critic_loss)
            context.optimizer_step("critic")
        outputs = model(batch.inputs, batch.valid)
        loss = context.module.head.loss(outputs, batch)
        context.backward(loss)
        context.optimizer_step("model")
        return StepOutput(loss, outputs, logs={"critic_loss": critic_loss.detach()})

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        out = super().eval_step(model, batch, context)
        score = context.modules["critic"](out.outputs).mean()
        return StepOutput(out.loss, out.outputs, logs={"critic_score": score, "constant": torch.tensor(2.0)})


def test_a_step_with_manual_optimization_alternates_updates_and_owns_a_checkpointed_module(tmp_path: Path) -> None:
    extra = DataLoader([(torch.full((4,), float(i)), torch.tensor(0)) for i in range(6)], batch_size=4,
                       collate_fn=InstanceModality().collate)  # fmt: skip
    step = AlternatingStep(extra, n_critic=2)
    records: list[dict[str, Any]] = []
    trainer, loader, model_steps = _trainer(step, tmp_path, accumulate=1, records=records)
    critic_steps: list[int] = []
    step.critic_optimizer.register_step_post_hook(lambda *_: critic_steps.append(1))
    critic_before = step.critic.weight.detach().clone()
    trainer.fit(loader, loader, epochs=1)
    assert len(model_steps) == 5 and len(critic_steps) == 10  # 2 critic updates per model update, 5 batches
    assert not torch.equal(critic_before, step.critic.weight)
    # the extra loader cycles: batches of 4 and 2 samples, then its next pass
    assert [len(x) for x in step.drawn[:4]] == [4, 2, 4, 2]
    assert records[0]["val_constant"] == 2.0 and "val_critic_score" in records[0]  # evaluation logs, as val_<key>
    assert "train_critic_loss" in records[0]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    torch.testing.assert_close(checkpoint["step_modules"]["critic"]["weight"], step.critic.weight.detach())
    fresh = AlternatingStep(extra, n_critic=2)
    resumed, _, _ = _trainer(fresh, tmp_path / "again", accumulate=1)
    resumed.load_state_dict(checkpoint)
    torch.testing.assert_close(fresh.critic.weight, step.critic.weight)


def test_manual_optimization_refuses_gradient_accumulation(tmp_path: Path) -> None:
    import pytest

    extra = DataLoader([(torch.zeros(4), torch.tensor(0))], collate_fn=InstanceModality().collate)
    with pytest.raises(ValueError, match="--training.accumulate_grad_batches 1"):
        _trainer(AlternatingStep(extra, n_critic=1), tmp_path, accumulate=2)


def test_a_step_sets_its_epoch_length_and_the_loader_starts_another_pass(tmp_path: Path) -> None:
    step = CountingStep(eval_needs_grad=False)
    trainer, loader, optimizer_steps = _trainer(step, tmp_path, accumulate=1, batches_per_epoch=7)
    seen: list[torch.Tensor] = []
    original = step.train_step

    def recording(model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        seen.append(batch.inputs[0].clone())
        return original(model, batch, context)

    step.train_step = recording  # type: ignore[method-assign]
    trainer.fit(loader, loader, epochs=2)
    assert step.train_calls == 14 and len(optimizer_steps) == 14  # 7 batches per epoch, the loader has 5
    assert torch.equal(seen[5], seen[0])  # batch 6 of the epoch is the first of the loader's second pass
