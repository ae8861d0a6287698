"""Masked classification's input mask: background black before the classifier's normalisation, the segmenter
frozen and in eval mode, its size and statistics its own."""

import torch
from torch import nn

from glovita.models.input_mask import InputMask


class _Logits:
    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs


class _HalfSegmenter(nn.Module):
    """Foreground on the left half: logits (B, 2, h, w) with class 1 far ahead there, class 0 elsewhere. Records the
    inputs it saw and holds a BatchNorm whose mode the test checks."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(3)
        self.head = _Logits()
        self.seen: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images)
        logits = torch.zeros(len(images), 2, *images.shape[-2:])
        half = images.shape[-1] // 2
        logits[:, 1, :, :half] = 20.0
        logits[:, 0, :, half:] = 20.0
        return logits + 0 * self.norm(images).sum()


def _mask(mode: str) -> tuple[InputMask, _HalfSegmenter]:
    segmenter = _HalfSegmenter()
    stats = ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    own = ([0.1, 0.2, 0.3], [0.5, 0.5, 0.5])
    return InputMask(segmenter, mode, 0.5, (8, 8), own, stats), segmenter  # type: ignore[arg-type]


def test_the_background_becomes_black_before_the_classifiers_normalisation() -> None:
    mask, segmenter = _mask("soft")
    images = torch.rand(2, 3, 16, 16)
    normalised = (images - 0.5) / 0.25
    out = mask(normalised) * 0.25 + 0.5  # back to pixel values
    assert torch.allclose(out[..., :7], images[..., :7], atol=1e-4)  # foreground kept (left of the bilinear seam)
    assert out[..., 9:].abs().max() < 1e-4  # background black (0), not the mean
    seen = segmenter.seen[-1]
    assert seen.shape == (2, 3, 8, 8)  # the segmenter's own size ...
    expected = (torch.nn.functional.interpolate(images, size=(8, 8), mode="bilinear") - torch.tensor(
        [0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)) / 0.5  # fmt: skip
    assert torch.allclose(seen, expected, atol=1e-5)  # ... and its own statistics


def test_hard_masks_are_zero_or_one_and_the_segmenter_stays_frozen() -> None:
    mask, segmenter = _mask("hard")
    model = nn.Sequential(mask).train()
    assert not segmenter.norm.training and not any(p.requires_grad for p in segmenter.parameters())
    images = torch.rand(1, 3, 16, 16)
    kept = mask.foreground(images)
    assert set(kept.unique().tolist()) == {0.0, 1.0}
    running = segmenter.norm.running_mean.clone()
    model(images)
    assert torch.equal(segmenter.norm.running_mean, running)
