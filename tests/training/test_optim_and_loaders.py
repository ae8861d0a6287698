"""Schedules, optimizers, seeded loaders and precision switches."""

import math

import pytest
import torch

from glovita.configs.optimizer import AdamOptimizerConfig, AdamwOptimizerConfig, SgdOptimizerConfig
from glovita.runtime.batch import on_input
from glovita.runtime.loaders import EpochPlan, SeededSampler, TransformedDataset
from glovita.training.optim import build_optimizer, build_scheduler, lr_factor
from tests.conftest import labels_batch


def test_cosine_with_warmup_shape() -> None:
    total, warmup = 100, 10
    factors = [lr_factor(s, total, warmup, "cosine", 0.1, 1, 1.0) for s in range(total)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_step_schedule_decays_every_step_size() -> None:
    assert [lr_factor(s, 100, 0, "step", 0.0, 10, 0.5) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(50, 100, 0, "none", 0.0, 10, 0.5) == 1.0


@pytest.mark.parametrize(
    "cfg", [AdamwOptimizerConfig(lr=0.02), AdamOptimizerConfig(lr=0.02), SgdOptimizerConfig(lr=0.2)]
)
def test_optimizers_reduce_loss_on_a_separable_problem(cfg) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = build_optimizer(cfg, model, fused=cfg.name != "sgd")
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch=20, epochs=1)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]
    assert optimizer.param_groups[1]["weight_decay"] == 0.0  # biases


def test_seeded_sampler_is_a_function_of_seed_and_epoch() -> None:
    sampler = SeededSampler(EpochPlan(10, seed=3, shuffle=True))
    first = list(sampler)
    assert sorted(i for i, _ in first) == list(range(10))
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_transformed_dataset_augmentation_depends_only_on_sample_seed() -> None:
    base = [(torch.zeros(1), 0)] * 3
    dataset = TransformedDataset(base, on_input(lambda x: x + torch.rand(1), "test"))
    torch.manual_seed(0)
    a = dataset[(1, 1234)]["input"]
    torch.manual_seed(99)
    state = torch.get_rng_state()
    b = dataset[(2, 1234)]["input"]
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched


def test_bf16_mixed_training_step_on_cpu() -> None:
    from glovita.configs.model import ModelConfig, TimmEncoderConfig
    from glovita.configs.peft import FullFinetuningConfig
    from glovita.models.factory import build_model

    model = build_model(
        ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained=False)), FullFinetuningConfig(), 3, 0.0
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(torch.randn(2, 3, 32, 32))
    assert outputs.dtype == torch.bfloat16
    loss = model.head.loss(outputs, labels_batch(torch.tensor([0, 2])))
    assert loss.dtype == torch.float32
    loss.backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_16_mixed_step(tmp_path, subdirs_dataset) -> None:
    from glovita.cli.train import main
    from tests.conftest import generic_args

    extra = ("--training.epochs", "1", "--training.precision", "16-mixed", "--training.device", "cuda")
    main(generic_args(subdirs_dataset, tmp_path / "exp", 3, *extra))
    assert list((tmp_path / "exp").rglob("test_metrics.json"))
