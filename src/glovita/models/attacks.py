"""Adversarial examples in input pixel units: PGD (Madry et al. 2018), FGSM and the TRADES inner maximisation
(Zhang et al. 2019), on images whose transforms normalised them last.

Attacks work on pixels in [0, 1]: the batch is un-normalised with the run's (mean, std), perturbed within the
epsilon ball (L-inf or L2) and clamped to [0, 1], and normalised again before each forward pass, so epsilon means
what it means in the papers (8/255 of the pixel range), whatever the encoder's normalisation."""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

Norm = Literal["linf", "l2"]
Logits = Callable[[torch.Tensor], torch.Tensor]
"""Normalised inputs -> logits (B, K)."""


class PixelSpace:
    """Between normalised inputs (B, C, ...) and pixels in [0, 1], with the run's per-channel statistics."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean = mean
        self.std = std

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, len(self.mean), *([1] * (like.ndim - 2)))
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def to_pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(inputs)
        return (inputs * std + mean).clamp(0, 1)

    def to_inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(pixels)
        return (pixels - mean) / std


def _per_sample_norm(values: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample, shaped (B, 1, ...) for broadcasting."""
    return values.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (values.ndim - 1)))


def project(delta: torch.Tensor, epsilon: float, norm: Norm) -> torch.Tensor:
    """The perturbation brought back into the epsilon ball."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / _per_sample_norm(delta)).clamp(max=1.0)


def _ascent(gradient: torch.Tensor, step_size: float, norm: Norm) -> torch.Tensor:
    """One ascent step: the gradient's sign (L-inf) or its direction (L2), times the step size."""
    if norm == "linf":
        return step_size * gradient.sign()
    return step_size * gradient / _per_sample_norm(gradient)


def random_start(pixels: torch.Tensor, epsilon: float, norm: Norm, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform draw in the L-inf ball, or a random direction scaled by U(0, 1) x epsilon in the L2 ball."""
    if norm == "linf":
        noise = torch.rand(pixels.shape, generator=generator, device=pixels.device, dtype=pixels.dtype)
        return (2 * noise - 1) * epsilon
    direction = torch.randn(pixels.shape, generator=generator, device=pixels.device, dtype=pixels.dtype)
    radius = torch.rand((len(pixels),), generator=generator, device=pixels.device, dtype=pixels.dtype)
    shape = (-1, *([1] * (pixels.ndim - 1)))
    return direction / _per_sample_norm(direction) * radius.view(shape) * epsilon


def pgd(
    logits_of: Logits,
    space: PixelSpace,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    norm: Norm = "linf",
    start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Normalised adversarial inputs that raise the cross-entropy of `targets` (class indices): `steps` ascent steps
    of `step_size` from a random start in the ball (`start`), each projected onto the ball and [0, 1]. FGSM is one
    step of size epsilon without a random start. Gradients are taken with torch.autograd.grad with respect to the
    perturbation only: no parameter gradient is touched."""
    if epsilon == 0 or steps == 0:  # no ball: the inputs themselves (no round trip through [0, 1])
        return inputs.detach()
    pixels = space.to_pixels(inputs.detach().float())
    delta = random_start(pixels, epsilon, norm, generator) if start else torch.zeros_like(pixels)
    delta = (pixels + delta).clamp(0, 1) - pixels
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(logits_of(space.to_inputs(pixels + delta)).float(), targets, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, delta)
        delta = project(delta.detach() + _ascent(gradient, step_size, norm), epsilon, norm)
        delta = (pixels + delta).clamp(0, 1) - pixels
    return space.to_inputs(pixels + delta).to(inputs.dtype).detach()


def trades_adversary(
    logits_of: Logits,
    space: PixelSpace,
    inputs: torch.Tensor,
    clean_logits: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    norm: Norm = "linf",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TRADES' inner maximisation: normalised inputs within the ball that raise KL(p(x) || p(x')), from x plus
    small Gaussian noise (0.001, as the paper's code)."""
    if epsilon == 0 or steps == 0:
        return inputs.detach()
    pixels = space.to_pixels(inputs.detach().float())
    target = F.softmax(clean_logits.detach().float(), dim=1)
    noise = torch.randn(pixels.shape, generator=generator, device=pixels.device, dtype=pixels.dtype)
    delta = (pixels + 0.001 * noise).clamp(0, 1) - pixels
    for _ in range(steps):
        delta.requires_grad_(True)
        log_p = F.log_softmax(logits_of(space.to_inputs(pixels + delta)).float(), dim=1)
        loss = F.kl_div(log_p, target, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, delta)
        delta = project(delta.detach() + _ascent(gradient, step_size, norm), epsilon, norm)
        delta = (pixels + delta).clamp(0, 1) - pixels
    return space.to_inputs(pixels + delta).to(inputs.dtype).detach()
