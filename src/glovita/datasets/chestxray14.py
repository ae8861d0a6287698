"""NIH ChestX-ray14 (Wang et al., 2017) from files on disk: images/, Data_Entry_2017.csv (columns
'Image Index', 'Finding Labels' joined by '|', 'Patient ID'), train_val_list.txt and test_list.txt."""

import csv
from pathlib import Path

import numpy as np

FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)  # fmt: skip
"""The 14 findings in the order of the dataset paper; 'No Finding' is the all-zero target."""

_VAL_SEED = 0


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"ChestX-ray14 split list '{path}' does not exist. Put the official train_val_list.txt and "
            "test_list.txt in data.data_root_dir."
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def collect_chestxray14(
    root: Path, val_fraction: float
) -> tuple[dict[str, list[tuple[Path, tuple[float, ...]]]], list[str]]:
    """Samples per split with multi-hot targets (14,); validation patients are held out of train_val."""
    csv_path = root / "Data_Entry_2017.csv"
    if not root.is_dir() or not csv_path.is_file():
        raise FileNotFoundError(
            f"data.data_root_dir: no ChestX-ray14 at '{root}' (needs Data_Entry_2017.csv, images/, "
            "train_val_list.txt, test_list.txt). Download the NIH release and point --data.data_root_dir at it."
        )
    entries: dict[str, tuple[tuple[float, ...], str]] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"Image Index", "Finding Labels", "Patient ID"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"'{csv_path}' lacks the column(s) {sorted(missing)}.")
        for row in reader:
            findings = {f for f in row["Finding Labels"].split("|") if f and f != "No Finding"}
            unknown = findings - set(FINDINGS)
            if unknown:
                raise ValueError(f"'{csv_path}': image {row['Image Index']} has unknown findings {sorted(unknown)}.")
            entries[row["Image Index"]] = (tuple(float(f in findings) for f in FINDINGS), row["Patient ID"])
    train_val, test = _read_list(root / "train_val_list.txt"), _read_list(root / "test_list.txt")
    absent = [name for name in train_val + test if name not in entries]
    if absent:
        raise ValueError(f"'{csv_path}' has no row for {len(absent)} listed image(s), e.g. {absent[:3]}.")
    patients = sorted({entries[name][1] for name in train_val})
    rng = np.random.default_rng(_VAL_SEED)
    held = set(rng.choice(patients, size=max(1, round(len(patients) * val_fraction)), replace=False).tolist())

    def samples(names: list[str]) -> list[tuple[Path, tuple[float, ...]]]:
        return [(root / "images" / name, entries[name][0]) for name in names]

    splits = {
        "train": samples([n for n in train_val if entries[n][1] not in held]),
        "val": samples([n for n in train_val if entries[n][1] in held]),
        "test": samples(test),
    }
    return splits, list(FINDINGS)
