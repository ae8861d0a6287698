"""Every listed policy is implemented, works on 1/3/4-channel images, is seeded, and is previewable."""

import typing
from pathlib import Path

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from glovita.augmentation.factory import _POLICIES, build_transform
from glovita.augmentation.preprocessing import Preprocessing
from glovita.configs.augmentation import POLICIES_3D, AugmentationConfig, PolicyName

NAMES = typing.get_args(PolicyName)
NAMES_2D = tuple(name for name in NAMES if name not in POLICIES_3D)
"""2D policies (augmentation/factory.py); the 3D ones are tested in tests/datasets/test_volumes.py."""
DOCS = Path(__file__).resolve().parents[2] / "docs" / "augmentation"


def _params(channels: int) -> Preprocessing:
    return Preprocessing(32, 36, (0.5,) * channels, (0.25,) * channels, "bicubic")


def test_listed_names_equal_implemented_ones() -> None:
    assert set(NAMES_2D) == set(_POLICIES)


@pytest.mark.parametrize("name", NAMES_2D)
@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_policy_output_shape_and_range(name: str, channels: int, mode: str) -> None:
    if name in ("randaugment", "default_2d_randaugment") and channels == 4:
        with pytest.raises(ValueError, match="needs 1- or 3-channel images"):
            build_transform(name, _params(channels), "data.augmentation.train_policy")
        return
    transform = build_transform(name, _params(channels), "data.augmentation.train_policy")
    image = Image.fromarray((torch.rand(48, 40, channels).squeeze(-1) * 255).byte().numpy(), mode=mode)
    for _ in range(5):
        out = transform(image)
        assert out.shape == (channels, 32, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["default_2d_3", "default_2d_5", "randaugment", "digits"])
def test_random_policies_vary_and_repeat_under_a_seed(name: str) -> None:
    transform = build_transform(name, _params(3), "f")
    image = Image.fromarray((torch.rand(48, 40, 3) * 255).byte().numpy())
    torch.manual_seed(7)
    first = transform(image)
    torch.manual_seed(7)
    assert torch.equal(first, transform(image))
    assert any(not torch.equal(first, transform(image)) for _ in range(5))


def test_default_is_deterministic() -> None:
    transform = build_transform("default", _params(1), "f")
    image = Image.fromarray((torch.rand(48, 40) * 255).byte().numpy(), mode="L")
    assert torch.equal(transform(image), transform(image))


def test_unknown_policy_lists_the_valid_names() -> None:
    with pytest.raises(ValidationError, match="default_2d_5"):
        AugmentationConfig(train_policy="default_2d_9")


def test_every_policy_has_a_picture_in_the_docs() -> None:
    text = (DOCS / "policies.md").read_text()
    for name in NAMES:
        assert f"**`{name}`**" in text, name
        picture = {"shared_default_2d": "default", "default_2d_randaugment": "randaugment"}.get(name, name)
        assert (DOCS / "img" / f"{picture}.png").is_file(), name


def test_show_augmentations_writes_the_grid(tmp_path: Path) -> None:
    from glovita.cli.show_augmentations import main

    out = tmp_path / "grid.png"
    main(["--data.data_root_dir", str(tmp_path / "digits"), "--data.augmentation.train_policy", "default_2d_2",
          "--num_samples", "3", "--repeats", "2", "--output_file", str(out)])  # fmt: skip
    with Image.open(out) as grid:
        assert grid.size == (480, 480)  # (1 + repeats) x 1.6 in and num_samples x 1.6 in, at 100 dpi


def test_noise_keeps_grayscale_images_gray() -> None:
    """default_2d_5 adds noise; on an RGB image with equal channels the channels must stay equal."""
    gray = Image.fromarray((torch.rand(48, 48) * 255).byte().numpy(), mode="L").convert("RGB")
    params = Preprocessing(32, 36, (0.5,) * 3, (0.25,) * 3, "bilinear")
    transform = build_transform("default_2d_5", params, "data.augmentation.train_policy")
    for seed in range(12):
        torch.manual_seed(seed)
        out = transform(gray)
        torch.testing.assert_close(out[0], out[1])
        torch.testing.assert_close(out[1], out[2])
