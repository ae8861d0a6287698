"""The installed console script trains on the real digits and reaches the accuracy the README promises."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_glovita_train_reaches_095_on_digits(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("glovita_train")
    assert script.is_file(), "pip install -e . should install the glovita_train console script"
    result = subprocess.run(
        [
            str(script),
            "--data.data_root_dir",
            str(tmp_path / "digits"),
            "--experiments_dir",
            str(tmp_path / "exp"),
            "--model.encoder.type",
            "resnet10t",
            "--model.encoder.no_pretrained",
            "--training.epochs",
            "8",
            "--training.checkpoint_every_n_epochs",
            "0",
            "--group",
            "acceptance",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "exp" / "digits" / "acceptance" / "0"
    assert f"Run directory: {run_dir.relative_to(tmp_path)}" in result.stdout or str(run_dir) in result.stdout
    test_metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert test_metrics["test_accuracy"] >= 0.95, test_metrics
    assert "test_accuracy" in result.stdout
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
