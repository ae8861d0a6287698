"""Regenerate the pictures of docs/augmentation/policies.md (run from the repository root):

    .venv/bin/python docs/augmentation/make_grids.py

The images are crops of scikit-learn's two bundled sample photos, written as a small generic image dataset.
"""

import tempfile
import typing
from pathlib import Path

from PIL import Image
from sklearn.datasets import load_sample_images

from glovita.augmentation.show import show_augmentations
from glovita.configs.augmentation import PolicyName
from glovita.configs.data import GenericImageDatasetConfig
from glovita.configs.model import ModelConfig, TimmEncoderConfig
from glovita.configs.show_augmentations import ShowAugmentationsConfig

OUT = Path(__file__).parent / "img"


def main() -> None:
    root = Path(tempfile.mkdtemp()) / "photos"
    for label, photo in zip(("china", "flower"), load_sample_images().images, strict=True):
        for split, count in (("train", 4), ("val", 1)):
            for i in range(count):
                folder = root / "images" / split / label
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(photo[60 * i : 60 * i + 300, 80 * i : 80 * i + 300]).save(folder / f"{i}.png")
    aliases = {"shared_default_2d", "default_2d_randaugment"}  # same transforms as default / randaugment
    for policy in (p for p in typing.get_args(PolicyName) if p not in aliases):
        data = GenericImageDatasetConfig(
            data_root_dir=root,
            num_classes=2,
            split_source="subdirs",
            augmentation={"train_policy": policy, "test_policy": "default", "image_size": 96, "resize_size": 110},
        )
        model = ModelConfig(encoder=TimmEncoderConfig(type="resnet18", pretrained=False))
        cfg = ShowAugmentationsConfig(
            data=data, model=model, num_samples=2, repeats=5, output_file=OUT / f"{policy}.png"
        )
        print(show_augmentations(cfg))


if __name__ == "__main__":
    main()
