"""CIFAR-10 / CIFAR-100 through torchvision, from files already on disk (or downloaded on request)."""

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def load_cifar(name: str, root: Path, train: bool, download: bool) -> Any:
    """The torchvision CIFAR dataset of one official split; a clear error when its files are missing."""
    from torchvision import datasets

    folder = root / _FOLDERS[name]
    if not download and not folder.is_dir():
        raise FileNotFoundError(
            f"data.data_root_dir: {_TITLES[name]} files not found at '{folder}'. Extract the python version of "
            f"{_TITLES[name]} there (the folder {_FOLDERS[name]}/ from the official archive), "
            "or pass --data.download to fetch it (needs a network)."
        )
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        return cls(root=str(root), train=train, download=download)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"data.data_root_dir: {_TITLES[name]} files in '{folder}' are incomplete or corrupted ({err}). "
            "Replace them, or delete the folder and pass --data.download."
        ) from err


class CifarDataset(Dataset):
    """A subset (by index) of a torchvision CIFAR split returning (PIL image, class index)."""

    def __init__(self, base: Any, indices: list[int], image_mode: str) -> None:
        self.base = base
        self.indices = indices
        self.image_mode = image_mode

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        image, target = self.base[self.indices[index]]
        return image.convert(self.image_mode), int(target)

    @property
    def targets(self) -> list[int]:
        all_targets = torch.as_tensor(self.base.targets)
        return all_targets[self.indices].tolist()
