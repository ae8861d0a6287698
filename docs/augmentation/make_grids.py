"""Regenerate the pictures of docs/augmentation/policies.md (run from the repository root):

    .venv/bin/python docs/augmentation/make_grids.py

The images are crops of scikit-learn's two bundled sample photos, written as a small generic image dataset;
the 3D policies are shown as mid-slices (axial | coronal | sagittal) of generated ellipsoid volumes.
"""

import json
import tempfile
import typing
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from glovita.configs.augmentation import POLICIES_3D, PolicyName
from glovita.configs.data import GenericImageDatasetConfig, GenericVolumeDatasetConfig
from glovita.configs.model import ModelConfig, TimmEncoderConfig
from glovita.configs.show_augmentations import ShowAugmentationsConfig
from glovita.preview.augmentations import show_augmentations

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
    for policy in (p for p in typing.get_args(PolicyName) if p not in aliases and p not in POLICIES_3D):
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
    volumes = write_volumes(Path(tempfile.mkdtemp()) / "volumes")
    for policy in POLICIES_3D:
        data = GenericVolumeDatasetConfig(
            data_root_dir=volumes,
            num_classes=2,
            volume_size=(48, 48, 48),
            augmentation={"train_policy": policy, "test_policy": "default_3d"},
        )
        cfg = ShowAugmentationsConfig(data=data, num_samples=2, repeats=4, output_file=OUT / f"{policy}.png")
        print(show_augmentations(cfg))


def write_volumes(root: Path) -> Path:
    """Two 48^3 volumes: a bright off-centre ellipsoid with an inner core, on a smooth gradient."""
    (root / "volumes").mkdir(parents=True)
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, 48),) * 3, indexing="ij"))
    ids = []
    for i, (centre, radii) in enumerate((((0.1, -0.1, 0.0), (0.6, 0.4, 0.3)), ((-0.1, 0.2, 0.1), (0.4, 0.5, 0.35)))):
        distance = sum(((grid[a] - centre[a]) / radii[a]) ** 2 for a in range(3))
        volume = 0.3 * grid[0] + (distance < 1) * 1.0 + (distance < 0.3) * 1.5
        np.save(root / "volumes" / f"v{i}.npy", volume.astype(np.float32))
        ids.append(f"v{i}.npy")
    (root / "splits.json").write_text(json.dumps({"train": ids, "val": ids[:1]}))
    (root / "labels.json").write_text(json.dumps({ids[0]: 0, ids[1]: 1}))
    return root


if __name__ == "__main__":
    main()
