"""A run that stops before its first checkpoint restarts with the same command; a full disk ends in one line,
leaves no temp file, records status failed, and the same command works once there is space."""

import json
import subprocess
from pathlib import Path

import pytest

from glovita.cli.train import main
from tests.conftest import class_image, generic_args


def _dataset(root: Path) -> Path:
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for label, name in enumerate("abc"):
            folder = root / "images" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                class_image(label, i).save(folder / f"{i}.png")
    return root


def test_a_run_that_failed_before_its_first_checkpoint_restarts(tmp_path: Path, capsys) -> None:
    root = _dataset(tmp_path / "ds")
    broken = root / "images" / "train" / "b" / "2.png"
    broken.write_bytes(broken.read_bytes()[:60])  # the header reads, the pixels not
    # without the check before training (which now decodes every file), it fails in the first epoch
    args = generic_args(root, tmp_path / "exp", 3, "--group", "g", "--training.epochs", "1", "--data.no_check_files")
    with pytest.raises(SystemExit):
        main(args)
    assert "2.png" in capsys.readouterr().err
    run_dir = tmp_path / "exp" / "generic_image_dataset" / "g" / "0"
    assert (run_dir / "config.json").is_file() and not (run_dir / "checkpoints" / "last.pt").exists()
    class_image(1, 2).save(broken)  # the cause is fixed: the same command works
    main(args)
    attempts = json.loads((run_dir / "runtime_info.json").read_text())["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "completed"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_a_checkpoint(small_disk: Path, tmp_path: Path, capsys) -> None:
    root = _dataset(tmp_path / "ds")
    args = generic_args(root, small_disk / "exp", 3, "--group", "g", "--training.epochs", "1")
    with pytest.raises(SystemExit) as stopped:
        main(args)  # test_resnet's checkpoint (weights + AdamW state) is about 4.5 MB
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("glovita_train: error:")]
    assert len(said) == 1 and "Traceback" not in err
    assert "No space left on the device while writing checkpoint" in said[0] and "MB are free" in said[0]
    assert "run the same command again" in said[0] and "--training.resume" not in said[0]  # nothing to resume yet
    run_dir = small_disk / "exp" / "generic_image_dataset" / "g" / "0"
    assert list((run_dir / "checkpoints").glob(".*tmp*")) == []  # the half-written file is gone
    assert json.loads((run_dir / "runtime_info.json").read_text())["status"] == "failed"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    main(args)  # space freed: the same command runs
    assert json.loads((run_dir / "runtime_info.json").read_text())["status"] == "completed"
