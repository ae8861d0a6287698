"""train.log: every run keeps what its console showed, as plain text in its run directory (the run directory first,
one line per epoch, the test metrics); a resumed run appends after a separator."""

import re
from pathlib import Path

from glovita.cli.train import main as train
from tests.conftest import feature_args


def test_train_log_holds_the_console_lines_and_grows_on_resume(tmp_path: Path, capsys) -> None:
    args = feature_args(tmp_path, "instances", ["--model.head.head_type", "classification"])
    train([*args, "--training.epochs", "2"])
    run_dir = tmp_path / "exp" / "precomputed_features" / "g" / "0"
    shown = capsys.readouterr().err
    lines = (run_dir / "train.log").read_text().splitlines()
    assert f"Run directory: {run_dir}" in lines
    assert all(line in shown for line in lines if not line.startswith(("test_", "wall time")))  # console lines
    epochs = [line for line in lines if re.match(r"epoch \d/2 ", line)]
    assert len(epochs) == 2 and all(line in shown for line in epochs)
    assert any(line.startswith("test_accuracy ") for line in lines)
    assert not any("\x1b" in line for line in lines)  # plain text, no terminal control characters
    train([*args, "--training.epochs", "3", "--training.resume"])
    again = (run_dir / "train.log").read_text().splitlines()
    assert again[: len(lines)] == lines and re.fullmatch(r"--- \d{4}-\d\d-\d\dT[\d:]+ ---", again[len(lines)])
    resumed = [line for line in again if re.match(r"epoch \d/3 ", line)]
    assert len(resumed) == 1 and resumed[0].startswith("epoch 3/3")  # the resumed run trained epoch 3 only
