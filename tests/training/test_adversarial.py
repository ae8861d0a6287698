"""Adversarial training: PGD in pixel units equals a reference PGD written here; epsilon 0 gives the clean accuracy
exactly; the attack leaves BatchNorm statistics alone; the step trains, logs robust accuracy (selectable for best.pt)
and is refused where there are no images."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glovita.cli.train import main
from glovita.models.attacks import PixelSpace, pgd, project
from tests.conftest import feature_args, generic_args

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _reference_pgd(net: nn.Module, pixels: torch.Tensor, targets: torch.Tensor, eps: float, alpha: float, steps: int,
                   start: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Madry et al.'s L-inf PGD on [0, 1] pixels, normalising inside the model call, written out plainly."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    x = (pixels + start).clamp(0, 1)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(net((x - mean) / std), targets, reduction="sum")
        grad = torch.autograd.grad(loss, x)[0]
        x = x.detach() + alpha * grad.sign()
        x = torch.min(torch.max(x, pixels - eps), pixels + eps).clamp(0, 1)
    return x


def test_pgd_in_pixel_units_equals_the_reference() -> None:
    net, space = _net(), PixelSpace(MEAN, STD)
    pixels = torch.rand(6, 3, 8, 8)
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    inputs = space.to_inputs(pixels)
    generator = torch.Generator().manual_seed(3)
    ours = pgd(net, space, inputs, targets, 0.1, 0.03, 5, "linf", generator=generator)
    start = (2 * torch.rand(pixels.shape, generator=torch.Generator().manual_seed(3)) - 1) * 0.1
    reference = _reference_pgd(net, pixels, targets, 0.1, 0.03, 5, start)
    torch.testing.assert_close(space.to_pixels(ours), reference, atol=1e-5, rtol=0)
    assert (space.to_pixels(ours) - pixels).abs().max() <= 0.1 + 1e-5
    assert F.cross_entropy(net(ours), targets) > F.cross_entropy(net(inputs), targets)
    l2 = pgd(net, space, inputs, targets, 0.5, 0.2, 5, "l2", generator=generator)
    assert (space.to_pixels(l2) - pixels).flatten(1).norm(dim=1).max() <= 0.5 + 1e-4
    assert torch.equal(pgd(net, space, inputs, targets, 0.0, 0.0, 5), inputs)  # no ball: the inputs themselves
    delta = torch.randn(4, 3, 2, 2)
    assert torch.allclose(project(delta, 0.3, "l2").flatten(1).norm(dim=1).clamp(max=0.3),
                          project(delta, 0.3, "l2").flatten(1).norm(dim=1))  # fmt: skip


def test_epsilon_zero_is_the_clean_accuracy_and_the_attack_leaves_batchnorm_alone(
    subdirs_dataset: Path, tmp_path: Path
) -> None:
    args = generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "2", "--group", "eps0",
                        "training.step:adversarial-step-config", "--training.step.epsilon", "0",
                        "--training.best_checkpoint_metric", "robust_accuracy")  # fmt: skip
    main(args)
    run = tmp_path / "exp" / "generic_image_dataset" / "eps0" / "0"
    for record in (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()):
        assert record["val_robust_accuracy"] == pytest.approx(record["val_accuracy"], abs=1e-6)
    tested = json.loads((run / "test_metrics.json").read_text())
    assert tested["test_robust_accuracy"] == pytest.approx(tested["test_accuracy"], abs=1e-6)
    assert json.loads((run / "resolved_config.json").read_text())["best_metric"] == "val_robust_accuracy"

    from glovita.configs.training import AdversarialStepConfig
    from glovita.runtime.batch import Batch
    from glovita.training.steps.adversarial import AdversarialStep
    from glovita.training.steps.base import StepContext

    class Model(nn.Module):  # a GloViTa-shaped model with BatchNorm
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3))
            self.head = type(
                "Head",
                (),
                {
                    "logits": staticmethod(lambda out: out),
                    "loss": staticmethod(lambda out, b: F.cross_entropy(out, b.targets)),
                },
            )()

        def forward(self, x: torch.Tensor, valid: object = None) -> torch.Tensor:
            return self.net(x)

        def main_outputs(self, out: torch.Tensor) -> torch.Tensor:
            return out

        def loss_terms(self, out: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict]:
            return F.cross_entropy(out, batch.targets), {}

    model = Model()
    model(torch.rand(2, 3, 8, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = AdversarialStep(AdversarialStepConfig(epsilon=0.1, steps=3), (MEAN, STD), epochs=1, seed=0)
    context = StepContext(model, lambda: torch.autocast("cpu", enabled=False))  # type: ignore[arg-type]
    batch = Batch(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    model.train()
    step._attack_training(batch, context, None)
    assert model.training  # train mode comes back for the update
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched


def test_adversarial_training_is_refused_without_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = feature_args(tmp_path, "instances", ["--model.head.head_type", "classification"])
    with pytest.raises(SystemExit):
        main([*args, "training.step:adversarial-step-config"])
    err = " ".join(capsys.readouterr().err.split())
    assert "perturbs 2D images in pixel units" in err and "holds feature vectors" in err
