"""glovita_sweep: trials are ordinary runs, the median pruner stops bad ones, the space is checked before any
trial, and a killed sweep resumes with the same command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glovita.cli.sweep import main as sweep
from tests.conftest import feature_args


def _train_flags(root: Path) -> list[str]:
    args = feature_args(root, "instances", ["--model.head.head_type", "classification", "--data.probe_optimizer",
                                            "configured"])  # fmt: skip
    i = args.index("--group")
    return [*args[:i], *args[i + 2 :], "--training.epochs", "4"]


def _study(root: Path, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'sweeps.db'}")


def test_sweep_trials_are_runs_and_bad_ones_are_pruned(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import matplotlib.figure

    space = tmp_path / "space.yaml"
    space.write_text("optimizer.lr: {type: categorical, choices: [1.0e-7, 0.05]}\n")
    common = ["--study", "lr", "--space", str(space), "--storage", f"sqlite:///{tmp_path / 'sweeps.db'}",
              "--startup_trials", "1", "--warmup_epochs", "0"]  # fmt: skip
    drawn: list[tuple[str, list[float]]] = []
    original = matplotlib.figure.Figure.savefig

    def recording(figure: matplotlib.figure.Figure, path: object, *args: object, **kwargs: object) -> None:
        if "optimization_history" in str(path):
            axes = figure.axes[0]
            low, high = axes.get_xlim()
            drawn.append((axes.get_ylabel(), [t for t in axes.get_xticks() if low <= t <= high]))
        original(figure, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", recording)
        sweep([*common, "--trials", "3", "--", *_train_flags(tmp_path)])
    output = "".join(capsys.readouterr())
    study = _study(tmp_path, "lr")
    states = [t.state.name for t in study.trials]
    assert len(states) == 3 and set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states, states
    folder = tmp_path / "exp" / "precomputed_features" / "lr"
    for trial in study.trials:
        run = folder / f"trial_{trial.number:03d}" / "0"
        assert trial.user_attrs["run_dir"] == str(run)
        info = json.loads((run / "runtime_info.json").read_text())
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        config = json.loads((run / "config.json").read_text())
        assert config["optimizer"]["lr"] == trial.params["optimizer.lr"]
        if trial.state.name == "PRUNED":  # stopped early, a slow learning rate, never the best
            assert info["stopped_early"] and len(epochs) < 4 and trial.params["optimizer.lr"] == 1e-7
        else:  # the objective is the run's best validation accuracy
            assert len(epochs) == 4 and trial.value == max(e["val_accuracy"] for e in epochs)
    summary = json.loads((folder / "sweep_summary.json").read_text())
    assert summary["best"]["params"] == {"optimizer.lr": 0.05} and summary["metric"] == "val_accuracy"
    assert (folder / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    label, ticks = drawn[0]  # the history plot: the metric's name, whole trial numbers
    assert label == "val_accuracy" and ticks and all(float(t).is_integer() for t in ticks)
    for trial in study.trials:  # one line per finished trial, then the ranking, best first
        if trial.state.name == "PRUNED":
            assert f"trial {trial.number} pruned after epoch" in output
        else:
            assert f"trial {trial.number} finished: val_accuracy {trial.value:.4f}" in output
    ranked = output.split("rank  trial")[1].splitlines()[1:]
    done = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    assert [int(line.split()[1]) for line in ranked[: len(done)]] == [t.number for t in done]


def test_space_is_checked_before_any_trial(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "space.yaml"
    flags = ["--study", "bad", "--trials", "2", "--space", str(space), "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    for text, message in [
        ("optimizer.lrr: {type: float, low: 1.0e-4, high: 1.0e-1}\n", "'optimizer.lrr' is not a field of this "
                                                                      "run's config. Did you mean optimizer.lr"),
        ("optimizer.lr: {type: float, low: -1.0, high: 1.0e-1}\n", "optimizer.lr=-1.0 is not accepted by "
                                                                   "glovita_train"),
        ("optimizer.lr: {type: float, low: 1.0, high: 0.1}\n", "needs numbers low < high"),
    ]:  # fmt: skip
        space.write_text(text)
        with pytest.raises(SystemExit):
            sweep([*flags, "--", *_train_flags(tmp_path)])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()


def test_a_killed_sweep_resumes_with_the_same_command(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n")
    flags = ["--study", "k", "--trials", "2", "--space", str(space), "--storage", f"sqlite:///{tmp_path / 'sweeps.db'}",
             "--pruner", "none", "--", *_train_flags(tmp_path)]  # fmt: skip
    script = str(Path(sys.executable).with_name("glovita_sweep"))
    process = subprocess.Popen([script, *flags, "--training.epochs", "400"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first = tmp_path / "exp" / "precomputed_features" / "k" / "trial_000" / "0" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (first.is_file() and first.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # in the middle of trial 0
    process.wait()
    assert first.is_file()
    sweep(flags)  # the same command again (here in-process, 4 epochs a trial)
    trials = _study(tmp_path, "k").trials
    assert trials[0].state.name in ("RUNNING", "FAIL")  # the killed trial does not count
    assert [t.number for t in trials if t.state.name == "COMPLETE"] == [1, 2]
    for number in (1, 2):
        info = json.loads((first.parents[2] / f"trial_{number:03d}" / "0" / "runtime_info.json").read_text())
        assert info["status"] == "completed"


def test_a_diverging_trial_fails_alone_and_later_workers_draw_new_points(tmp_path: Path) -> None:
    """Trials whose loss goes NaN (SGD at lr 1e30) are recorded as failed with their reason and the sweep ends with
    its summary; a second process joining a study (the documented several-machines recipe) draws other points than
    the first drew."""
    storage = ["--storage", f"sqlite:///{tmp_path / 'sweeps.db'}", "--pruner", "none"]
    train = [*_train_flags(tmp_path), "--optimizer.name", "sgd", "--training.epochs", "1"]
    space = tmp_path / "diverging.yaml"
    space.write_text("optimizer.lr: {type: categorical, choices: [1.0e+30, 1.0e+35]}\n")
    sweep(["--study", "d", "--space", str(space), *storage, "--trials", "2", "--", *train])
    failed = _study(tmp_path, "d").trials
    assert [t.state.name for t in failed] == ["FAIL", "FAIL"]
    assert all("nan" in t.user_attrs["failure"].lower() for t in failed)
    summary = json.loads((tmp_path / "exp" / "precomputed_features" / "d" / "sweep_summary.json").read_text())
    assert [bool(t.get("failure")) for t in summary["trials"]] == [True, True] and "best" not in summary

    space.write_text("optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n")
    sweep(["--study", "w", "--space", str(space), *storage, "--trials", "2", "--", *train])
    sweep(["--study", "w", "--space", str(space), *storage, "--trials", "4", "--", *train])  # a later worker
    drawn = [t.params["optimizer.lr"] for t in _study(tmp_path, "w").trials]
    assert len(drawn) == 4 and drawn[2:] != drawn[:2] and len(set(drawn)) == 4


def test_a_mistyped_storage_url_is_answered_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1}\n")
    with pytest.raises(SystemExit):
        sweep(["--study", "s", "--space", str(space), "--storage", f"sqlit:///{tmp_path / 's.db'}", "--trials", "1",
               "--", *_train_flags(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert f"--storage 'sqlit:///{tmp_path / 's.db'}' cannot be opened" in " ".join(err.split())
    assert "Traceback" not in err
