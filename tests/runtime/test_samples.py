"""Samples as named fields: one transform call moves an image (or volume) and its label map together, a sample
without a label map takes exactly the image-only path, and batches carry every field by name."""

import numpy as np
import pytest
import torch
from PIL import Image

from glovita.augmentation.factory import build_transform
from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.images import JointImageTransform
from glovita.runtime.batch import INPUT, LABEL_MAP, TARGETS, collate_samples, on_input

PARAMS = Preprocessing(image_size=32, resize_size=36, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                      interpolation="bilinear")  # fmt: skip


def _square_sample() -> dict:
    """A black 40x40 image with a white 16x16 square off-centre, and the label map marking the square (class 1)."""
    pixels = np.zeros((40, 40, 3), dtype=np.uint8)
    pixels[6:22, 14:30] = 255
    label_map = np.zeros((40, 40), dtype=np.uint8)
    label_map[6:22, 14:30] = 1
    return {INPUT: Image.fromarray(pixels), LABEL_MAP: Image.fromarray(label_map), TARGETS: 1}


@pytest.mark.parametrize("policy", ["default_2d_1", "default_2d_3", "default_2d_5"])
def test_image_and_label_map_move_together(policy: str) -> None:
    transform = JointImageTransform(build_transform(policy, PARAMS, "train_policy"), policy)
    for seed in range(12):
        torch.manual_seed(seed)
        out = transform(_square_sample())
        image, label_map = out[INPUT], out[LABEL_MAP]
        assert label_map.dtype == torch.long and label_map.shape == image.shape[-2:] == (32, 32)
        assert set(label_map.unique().tolist()) <= {0, 1}  # nearest interpolation: no new classes
        brightness = (image * 0.25 + 0.5).mean(0)  # un-normalised
        if label_map.sum() > 20 and (label_map == 0).sum() > 20:
            inside, outside = brightness[label_map == 1].mean(), brightness[label_map == 0].mean()
            assert inside > outside + 0.3, (policy, seed, float(inside), float(outside))
        assert out[TARGETS] == 1


def test_a_sample_without_label_map_takes_the_image_only_path() -> None:
    policy = build_transform("default_2d_3", PARAMS, "train_policy")
    sample = _square_sample()
    del sample[LABEL_MAP]
    torch.manual_seed(7)
    joint = JointImageTransform(policy, "default_2d_3")(sample)[INPUT]
    torch.manual_seed(7)
    assert torch.equal(joint, policy(sample[INPUT]))


def test_a_policy_that_cannot_move_a_label_map_is_named() -> None:
    transform = JointImageTransform(build_transform("randaugment", PARAMS, "p"), "data.augmentation.train_policy='x'")
    with pytest.raises(ValueError, match="train_policy='x' cannot move a label_map"):
        transform(_square_sample())


def test_volume_and_label_map_move_together() -> None:
    from glovita.augmentation.policies.shared_3d import build_3d_policy
    from glovita.modalities.volumes import joint_volume_transform

    volume = torch.zeros(1, 16, 16, 16)
    volume[0, 2:7, 3:9, 9:14] = 5.0
    label_map = (volume[0] > 0).long()
    transform = joint_volume_transform(build_3d_policy("default_3d_2", (16, 16, 16)))
    for seed in range(6):
        torch.manual_seed(seed)
        np.random.seed(seed)
        out = transform({INPUT: volume, LABEL_MAP: label_map, TARGETS: 0})
        moved = out[LABEL_MAP]
        assert moved.shape == (16, 16, 16) and set(moved.unique().tolist()) <= {0, 1}
        inside, outside = out[INPUT][0][moved == 1].mean(), out[INPUT][0][moved == 0].mean()
        assert inside > outside + 1.0


def test_an_input_only_transform_refuses_a_label_map() -> None:
    transform = on_input(lambda x: x, "series")
    with pytest.raises(ValueError, match="series with a label_map are not supported yet"):
        transform({INPUT: torch.zeros(1, 8), LABEL_MAP: torch.zeros(8), TARGETS: 0})


def test_batches_carry_every_field_by_name() -> None:
    samples = [{INPUT: torch.full((1, 4, 4), float(i)), TARGETS: i, LABEL_MAP: torch.full((4, 4), i), "id": f"s{i}"}
               for i in range(3)]  # fmt: skip
    batch = collate_samples(samples)
    assert batch.inputs.shape == (3, 1, 4, 4) and batch.targets.tolist() == [0, 1, 2]
    assert batch.ids == ["s0", "s1", "s2"] and batch.read(LABEL_MAP)[2].unique().tolist() == [2]
    moved = batch.to(torch.device("cpu"), torch.channels_last)
    assert moved.inputs.is_contiguous(memory_format=torch.channels_last) and LABEL_MAP in moved.fields
    with pytest.raises(KeyError, match="no field 'target_image'"):
        batch.read("target_image")
    pairs = collate_samples([(torch.zeros(2), 1), (torch.ones(2), 0)])  # (input, target) pairs are read as samples
    assert pairs.targets.tolist() == [1, 0] and pairs.fields == {} and pairs.ids is None
