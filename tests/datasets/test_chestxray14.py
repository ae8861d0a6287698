"""ChestX-ray14 from a tiny fake folder of the official layout: labels, patient-level split, multilabel training."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glovita.cli.train import main
from glovita.configs.data import ChestXRay14Config
from glovita.datasets.chestxray14 import FINDINGS
from glovita.datasets.factory import build_datasets
from tests.conftest import FAST


def make_fake_chestxray14(root: Path, patients: int = 24, per_patient: int = 3) -> Path:
    """Grayscale 32x32 scans; 'Effusion' scans carry a bright band, 'Mass' a bright square, some have both."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows, names = [], []
    for patient in range(patients):
        for visit in range(per_patient):
            name = f"{patient:08d}_{visit:03d}.png"
            findings = [f for f, p in (("Effusion", 0.5), ("Mass", 0.4)) if rng.random() < p]
            pixels = rng.integers(0, 50, (32, 32), dtype=np.uint8)
            if "Effusion" in findings:
                pixels[20:28, :] = 230
            if "Mass" in findings:
                pixels[4:12, 4:12] = 230
            Image.fromarray(pixels, mode="L").save(root / "images" / name)
            rows.append(f"{name},{'|'.join(findings) or 'No Finding'},{visit},{patient},50,M,PA,2500,2048,0.14,0.14")
            names.append(name)
    header = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    header += "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    (root / "Data_Entry_2017.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    cut = (patients - 6) * per_patient
    (root / "train_val_list.txt").write_text("\n".join(names[:cut]) + "\n")
    (root / "test_list.txt").write_text("\n".join(names[cut:]) + "\n")
    return root


@pytest.fixture
def chestxray14(tmp_path: Path) -> Path:
    return make_fake_chestxray14(tmp_path / "ChestXray14")


def test_labels_and_patient_level_split(chestxray14: Path) -> None:
    splits = build_datasets(ChestXRay14Config(data_root_dir=chestxray14, val_fraction=0.25), input_channels=1)
    assert splits.class_names == list(FINDINGS) and len(FINDINGS) == 14
    assert len(splits.train) + len(splits.val) == 54 and len(splits.test) == 18

    def patients(dataset) -> set[str]:
        return {path.name.split("_")[0] for path, _ in dataset.samples}

    assert not patients(splits.train) & patients(splits.val)
    csv = (chestxray14 / "Data_Entry_2017.csv").read_text().splitlines()[1:]
    expected = {line.split(",")[0]: line.split(",")[1] for line in csv}
    image, target = splits.test[0]
    name = splits.test.samples[0][0].name
    assert image.mode == "L" and target.shape == (14,)
    on = {FINDINGS[i] for i in range(14) if target[i] == 1}
    assert on == ({f for f in expected[name].split("|")} - {"No Finding"})


def test_missing_files_say_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="needs Data_Entry_2017.csv, images/, train_val_list.txt"):
        build_datasets(ChestXRay14Config(data_root_dir=tmp_path), 1)


def test_multilabel_run_with_pos_weight(chestxray14: Path, tmp_path: Path, capsys) -> None:
    main(["--data.dataset", "chestxray14", "--data.data_root_dir", str(chestxray14),
          "--data.augmentation.train_policy", "default_2d_4", "--data.augmentation.test_policy", "shared_default_2d",
          "--task.multilabel_pos_weight", "--training.epochs", "2", "--experiments_dir", str(tmp_path / "exp"),
          "--group", "cxr", *FAST])  # fmt: skip
    run_dir = tmp_path / "exp" / "chestxray14" / "cxr" / "0"
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert {"test_loss", "test_auroc", "test_map", "test_f1_macro", "test_auroc_class_2"} <= set(metrics)
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["best_metric"] == "val_auroc" and resolved["augmentation"]["train_policy"] == "default_2d_4"
    assert len(resolved["pos_weight"]) == 14 and resolved["pos_weight"][0] == 1.0  # no Atelectasis positives
    captured = capsys.readouterr()
    out = " ".join((captured.out + captured.err).split())
    assert "warning: the train split has no positives of label 'Atelectasis'" in out
    assert not (run_dir / "confusion_matrix.png").exists()


def test_multilabel_only_where_labels_are_multilabel(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--data.subtask", "multilabel", *FAST])
    assert "data.subtask='multilabel' is not supported by data.dataset='digits'" in capsys.readouterr().err
