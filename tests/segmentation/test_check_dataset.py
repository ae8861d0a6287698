"""glovita_check_dataset: counts per split, every bad file named with the entry to drop, exit status."""

import json
from pathlib import Path

import numpy as np
import pytest

from glovita.cli.check_dataset import main as check_dataset
from tests.segmentation.data import save_mask, segmentation_set

SEGMENTATION = ["--data.dataset", "generic_image_dataset", "--data.num_classes", "3", "--data.task", "Segmentation",
                "--data.masks_dir", "masks"]  # fmt: skip


def test_a_clean_set_is_counted_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = segmentation_set(tmp_path / "set")
    check_dataset([*SEGMENTATION, "--data.data_root_dir", str(root)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "train: 6 samples" and out[2] == "val: 2 samples"
    # squares of 12x12 on 24x24: a quarter of the pixels, class 1 on even indices, class 2 on odd ones
    assert out[1] == "  pixels: 0 75.0%, 1 12.5%, 2 12.5%"
    assert out[-1] == "10 files checked, 0 cannot be used."


def test_a_missing_mask_and_a_bad_label_are_listed_and_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = segmentation_set(tmp_path / "set")
    (root / "masks" / "04.png").unlink()
    save_mask(root / "masks" / "09.png", np.full((24, 24), 7))
    with pytest.raises(SystemExit) as stopped:
        check_dataset([*SEGMENTATION, "--data.data_root_dir", str(root)])
    assert stopped.value.code == 1
    out = capsys.readouterr().out
    assert "10 files checked, 2 cannot be used." in out
    assert "04.png' does not exist" in out and "09.png' has values 7 outside the classes" in out
    dropped = out.split("Entries to drop from the split/label files (or fix their files):\n")[1].split()
    assert dropped == ["train", "04.png", "test", "09.png"]
    splits = json.loads((root / "splits.json").read_text())
    assert "04.png" in splits["train"] and "09.png" in splits["test"]  # the printed entries are the split ids


def test_classes_are_counted_per_split_for_classification(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.conftest import write_images

    for split, count in (("train", 3), ("val", 2)):
        for label, name in enumerate("ab"):
            write_images(tmp_path / "set" / "images" / split / name, label, count + label, prefix=split)
    check_dataset(["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(tmp_path / "set"),
                   "--data.num_classes", "2", "--data.split_source", "subdirs"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["train: 7 samples", "  classes: a 3, b 4", "val: 5 samples", "  classes: a 2, b 3"]
