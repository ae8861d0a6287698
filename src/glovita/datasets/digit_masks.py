"""Digit masks: a segmentation set we can make anywhere from scikit-learn's bundled digits.

Each image draws one digit, enlarged (bilinear) to half to three quarters of the image side at a random place, in a
random colour over a random colour gradient crossed by random line segments, plus pixel noise. Its label map marks
the digit's stroke (the enlarged digit's intensity above half, drawn with a steep edge): 1 (binary) or 1 + the
digit (digit classes), 0 elsewhere. Written as a generic image dataset with masks:

    images/<digit>/<n>.png   RGB images
    masks/<digit>/<n>.png    8-bit label maps (mode L), same size
    splits.json              train/val/test (60/20/20, stratified by digit)
With decoy_size, each image also gets a grey square in a random corner whose shade gives away the digit in train and
val (255 - 25 x digit) and is random in test (after Ross et al. 2017's Decoy MNIST); masks leave it out.
"""

import json
import shutil
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from glovita.configs.digit_masks import DigitMasksConfig
from glovita.datasets.splits import stratified_split
from glovita.runtime.io import atomic_path


@dataclass(frozen=True)
class DigitMasks:
    num_images: int
    num_classes: int
    foreground_share: float
    """Share of pixels that are digit strokes."""


def _background(rng: np.random.Generator, size: int, lines: int) -> np.ndarray:
    """(size, size, 3) in [0, 1]: a gradient between two random colours, crossed by `lines` random segments."""
    start, end = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    ramp = ((np.cos(angle) * xx + np.sin(angle) * yy) + 1.5) / 3
    image = Image.fromarray(np.uint8(255 * (start + (end - start) * ramp[..., None])))
    draw = ImageDraw.Draw(image)
    for _ in range(lines):
        points = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(points, fill=colour, width=int(rng.integers(1, 3)))
    return np.asarray(image, dtype=np.float32) / 255


def draw_digit(
    digit: np.ndarray, rng: np.random.Generator, size: int, lines: int, noise_std: float, plain: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image (size, size, 3) uint8, stroke mask (size, size) bool) of an 8x8 digit with values in [0, 16];
    `plain`: white on black, three quarters of the side, centred within 2 pixels (the look of MNIST)."""
    if plain:
        side = 3 * size // 4
        top, left = (int(v) + (size - side) // 2 for v in rng.integers(-2, 3, 2))
    else:
        side = int(rng.integers(size // 2, 3 * size // 4 + 1))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
    glyph = Image.fromarray(np.float32(digit / 16.0), mode="F").resize((side, side), Image.Resampling.BILINEAR)
    alpha = np.zeros((size, size), np.float32)
    # A steep ramp around 0.5 keeps stroke edges a pixel or two wide, so what is drawn is what the mask marks.
    alpha[top : top + side, left : left + side] = np.clip((np.asarray(glyph) - 0.35) / 0.3, 0, 1)
    if plain:
        colour, background = np.ones(3, np.float32), np.zeros((size, size, 3), np.float32)
    else:
        colour, background = rng.uniform(0, 1, 3).astype(np.float32), _background(rng, size, lines)
    image = background * (1 - alpha[..., None]) + colour * alpha[..., None]
    image = np.clip(image + rng.normal(0, noise_std, image.shape), 0, 1)
    return np.uint8(np.round(image * 255)), alpha > 0.5


def draw_decoy(image: np.ndarray, stroke: np.ndarray, shade: int, side: int, rng: np.random.Generator) -> None:
    """Paint a grey square of `shade` in a random corner of `image` (H, W, 3) and take it out of `stroke` (H, W):
    the decoy of Ross et al.'s Decoy MNIST, which is not part of the digit."""
    size = image.shape[0]
    top = 0 if rng.integers(0, 2) == 0 else size - side
    left = 0 if rng.integers(0, 2) == 0 else size - side
    image[top : top + side, left : left + side] = shade
    stroke[top : top + side, left : left + side] = False


def make_digit_masks(cfg: DigitMasksConfig) -> DigitMasks:
    """Write the set under cfg.output_dir (staged under a temporary name and renamed at the end)."""
    root = cfg.output_dir
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"output_dir '{root}' is not empty. Point --output_dir at a missing or empty folder.")
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(cfg.seed)
    chosen = [n % len(digits.target) for n in range(cfg.num_images)]
    labels = [int(digits.target[n]) for n in chosen]
    ids = [f"{label}/{n:05d}.png" for n, label in enumerate(labels)]
    rest, test = stratified_split(labels, 0.2, cfg.seed, stratify=True)
    train, val = stratified_split([labels[i] for i in rest], 0.25, cfg.seed, stratify=True)
    splits = {
        "train": [ids[rest[i]] for i in train],
        "val": [ids[rest[i]] for i in val],
        "test": [ids[i] for i in test],
    }
    if root.exists():
        root.rmdir()
    foreground = 0
    with atomic_path(root) as staging:
        shutil.rmtree(staging, ignore_errors=True)
        tested = set(splits["test"])
        for sample_id, n, label in zip(ids, chosen, labels, strict=True):
            image, stroke = draw_digit(
                digits.images[n], rng, cfg.image_size, cfg.clutter_lines, cfg.noise_std, cfg.style == "plain"
            )
            if cfg.decoy_size > 0:
                shade = int(rng.integers(0, 256)) if sample_id in tested else 255 - 25 * label
                draw_decoy(image, stroke, shade, cfg.decoy_size, rng)
            value = 1 if cfg.classes == "binary" else 1 + label
            mask = np.where(stroke, value, 0).astype(np.uint8)
            foreground += int(stroke.sum())
            for folder, array, mode in (("images", image, "RGB"), ("masks", mask, "L")):
                path = staging / folder / sample_id
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array, mode=mode).save(path)
        (staging / "splits.json").write_text(json.dumps(splits, indent=1))
        (staging / "labels.json").write_text(json.dumps(dict(zip(ids, labels, strict=True)), indent=1))
    num_classes = 2 if cfg.classes == "binary" else 11
    return DigitMasks(len(ids), num_classes, foreground / (len(ids) * cfg.image_size**2))
