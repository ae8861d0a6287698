"""Pictures of samples laid out as captioned tiles in one PNG (PIL only: a few milliseconds, so every run can write
them). Used for a run's worst test errors and its augmentation preview; series are drawn as curves first."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from glovita.runtime.io import atomic_path

TILE_HEIGHT = 112
"""Height of a tile's picture in pixels; its width follows the picture's aspect (video strips are wide)."""
MAX_WIDTH = 1000
"""A row of tiles (and a single wide strip) is at most this wide."""
_CURVE_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


@dataclass(frozen=True)
class Tile:
    picture: np.ndarray
    """(H, W) or (H, W, 3) in [0, 1]."""
    caption: tuple[str, ...]
    """Lines under the picture."""
    row_start: bool = False
    """Begin a new row with this tile (a row per sample in the augmentation preview)."""


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def as_picture(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image of [0, 1] values (C 1 or 3) as a picture (H, W) or (H, W, 3), clipped to [0, 1]."""
    values = image.detach().float().clamp(0.0, 1.0).cpu().numpy()
    return values[0] if values.shape[0] == 1 else values.transpose(1, 2, 0)


def picture_image(picture: np.ndarray, height: int = TILE_HEIGHT, max_width: int = MAX_WIDTH) -> Image.Image:
    """A [0, 1] picture as an RGB image `height` pixels high (nearest-neighbour when enlarged, so pixels stay
    visible), narrowed to `max_width`."""
    pixels = np.clip(np.nan_to_num(np.asarray(picture, dtype=np.float32)), 0.0, 1.0)
    image = Image.fromarray((pixels * 255).round().astype(np.uint8)).convert("RGB")
    width = max(1, round(image.width * height / max(image.height, 1)))
    if width > max_width:
        width, height = max_width, max(1, round(image.height * max_width / image.width))
    enlarging = height >= image.height
    return image.resize((width, height), Image.Resampling.NEAREST if enlarging else Image.Resampling.BILINEAR)


def curve_picture(series: np.ndarray, width: int = 240, height: int = TILE_HEIGHT) -> np.ndarray:
    """A (C, T) series (NaN padding left out) as a picture: its first four channels as curves on white."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    values = np.asarray(series, dtype=np.float64)[:4]
    finite = values[np.isfinite(values)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        span = high - low if high > low else 1.0
        for channel, line in enumerate(values):
            steps = np.flatnonzero(np.isfinite(line))
            if len(steps) < 2:
                continue
            xs = 4 + steps / max(len(line) - 1, 1) * (width - 8)
            ys = height - 4 - (line[steps] - low) / span * (height - 8)
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=_CURVE_COLOURS[channel % 4], width=1)
    return np.asarray(image, dtype=np.float32) / 255.0


def save_tiles(tiles: list[Tile], path: Path, title: str) -> Path:
    """Write the tiles as one PNG (atomically): rows filled left to right up to MAX_WIDTH, each picture with its
    caption lines below it, the title on top."""
    font, title_font = _font(11), _font(13)
    line_height, gap = 14, 8
    caption_lines = max((len(tile.caption) for tile in tiles), default=0)
    placed: list[tuple[Image.Image, tuple[str, ...], int, int]] = []
    x, y, row_height = gap, 24, 0
    for tile in tiles:
        image = picture_image(tile.picture)
        text_width = max((int(font.getlength(line)) for line in tile.caption), default=0)
        cell_width = min(max(image.width, text_width), MAX_WIDTH)
        cell_height = image.height + caption_lines * line_height + 4
        if placed and (tile.row_start or x + cell_width > MAX_WIDTH):
            x, y = gap, y + row_height + gap
            row_height = 0
        placed.append((image, tile.caption, x, y))
        x += cell_width + gap
        row_height = max(row_height, cell_height)
    ends = [px + max([image.width, *(int(font.getlength(line)) for line in lines)]) for image, lines, px, _ in placed]
    width = max([gap + 200, int(title_font.getlength(title)) + 2 * gap, *(end + gap for end in ends)])
    canvas = Image.new("RGB", (width, y + row_height + gap), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, 4), title, fill="black", font=title_font)
    for image, lines, px, py in placed:
        canvas.paste(image, (px, py))
        for k, line in enumerate(lines):
            draw.text((px, py + image.height + 2 + k * line_height), line, fill="black", font=font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
