"""Runs that survive clusters: SIGTERM / SIGUSR1 stop a run at a safe point inside an epoch, and the same
--training.resume_mode auto command continues it to the weights of an uninterrupted run; auto on a completed run
exits at once; best and restart keep every earlier file; checkpoints inside an epoch resume exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glovita.cli.train import main
from glovita.training.preemption import PREEMPTED_EXIT_CODE
from glovita.training.steps.supervised import SupervisedStep
from tests.conftest import generic_args

TIMING_KEYS = ("epoch_seconds", "train_data_seconds", "train_samples_per_second", "val_seconds")


def _weights(run_dir: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)["model"]


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines]


def _flat(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr as one line (a config error is drawn in a box that wraps)."""
    return " ".join(capsys.readouterr().err.split())


def _wait_for_lines(path: Path, count: int, child: subprocess.Popen, limit: float = 120.0) -> None:
    began = time.perf_counter()
    while time.perf_counter() - began < limit and child.poll() is None:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.01)


def test_checkpoint_every_n_steps_resumes_inside_the_epoch_to_identical_weights(
    subdirs_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = tmp_path / "exp"

    def args(group: str, *extra: str) -> list[str]:
        return generic_args(subdirs_dataset, experiments, 3, "--group", group, "--training.epochs", "2",
                            "--dataloading.batch_size", "4", "--training.accumulate_grad_batches", "2",
                            "--training.ema_decay", "0.9", "--task.mixup_alpha", "0.4", "--model.head.dropout", "0.2",
                            "--data.augmentation.train_policy", "randaugment", *extra)  # fmt: skip

    main(args("straight"))
    original, calls = SupervisedStep.train_step, {"n": 0}

    def dying_step(self, model, batch, context):  # 9 batches an epoch; optimizer steps after batches 2, 4, 6, 8
        calls["n"] += 1
        if calls["n"] == 9 + 7:  # epoch 2, after the checkpoint at its 3rd optimizer step (batch 6)
            raise KeyboardInterrupt("simulated kill")
        return original(self, model, batch, context)

    monkeypatch.setattr(SupervisedStep, "train_step", dying_step)
    with pytest.raises(SystemExit):
        main(args("killed", "--training.checkpoint_every_n_steps", "3"))
    monkeypatch.setattr(SupervisedStep, "train_step", original)
    run_dir = experiments / "generic_image_dataset" / "killed" / "0"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["epoch_progress"]["step"] == 6
    capsys.readouterr()
    monkeypatch.setenv("SLURM_JOB_END_TIME", str(int(time.time()) - 60))  # the job's time is already spent
    main(args("killed", "--training.checkpoint_every_n_steps", "3", "--training.resume"))
    err = capsys.readouterr().err
    assert "Resuming " in err and "at epoch 2/2, step 6" in err
    assert err.count("warning: this run is expected to end at") == 1 and "the SLURM job's end time ends at" in err
    straight = experiments / "generic_image_dataset" / "straight" / "0"
    _same_weights(_weights(straight), _weights(run_dir))
    ema = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["ema"]
    _same_weights(torch.load(straight / "checkpoints" / "last.pt", weights_only=True)["ema"], ema)
    assert _records(straight) == _records(run_dir)
    info = json.loads((run_dir / "runtime_info.json").read_text())
    assert info["fits_time_limit"] is False and info["expected_seconds_left"] >= 0 and "expected_end" in info


def test_best_and_restart_keep_every_earlier_file(subdirs_dataset: Path, tmp_path: Path, capsys) -> None:
    experiments = tmp_path / "exp"
    base = generic_args(subdirs_dataset, experiments, 3, "--group", "g", "--training.epochs", "3",
                        "--training.best_checkpoint_metric", "val_loss")  # fmt: skip
    main(base)
    group = experiments / "generic_image_dataset" / "g"
    run_dir = group / "0"
    original = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    best_epoch = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["epoch"]

    main([*base, "--training.resume_mode", "best", "--training.epochs", "4"])
    aside = [p for p in group.iterdir() if p.name.startswith("0.after-best-")]
    assert len(aside) == 1
    assert {p.relative_to(aside[0]): p.read_bytes() for p in aside[0].rglob("*") if p.is_file()} == original
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [*range(best_epoch + 1), *range(best_epoch + 1, 4)]  # history up to best.pt, then on
    kept = (run_dir / "metrics.jsonl").read_text().splitlines()[: best_epoch + 1]
    assert kept == original[Path("metrics.jsonl")].decode().splitlines()[: best_epoch + 1]
    assert "continuing from best.pt (epoch" in capsys.readouterr().err

    continued = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    main([*base, "--training.resume_mode", "restart"])
    restarted = [p for p in group.iterdir() if p.name.startswith("0.restarted-")]
    assert len(restarted) == 1
    assert {p.relative_to(restarted[0]): p.read_bytes() for p in restarted[0].rglob("*") if p.is_file()} == continued
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]
    assert json.loads((run_dir / "runtime_info.json").read_text())["attempts"][0]["status"] == "completed"


def test_auto_takes_its_group_from_slurm_and_refuses_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    args = ["--experiments_dir", str(tmp_path), "--training.resume_mode", "auto"]
    with pytest.raises(SystemExit):
        main(args)
    assert "training.resume_mode auto needs a fixed run folder" in capsys.readouterr().err
    from glovita.training.resolve import auto_resume_group

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert auto_resume_group() == "slurm-4242"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert auto_resume_group() == "slurm-77_3"
    with pytest.raises(SystemExit):
        main(["--training.resume_mode", "restart"])
    assert "training.resume_mode restart needs the run to act on: pass --group NAME" in _flat(capsys)
    with pytest.raises(SystemExit):
        main(["--training.resume", "--training.resume_mode", "best", "--group", "g"])
    assert "disagree: --training.resume is resume_mode strict" in _flat(capsys)


def test_expected_end_and_time_limit_by_hand() -> None:
    from glovita.training.estimate import RunEstimate, deadline

    estimate = RunEstimate(epochs=10, val_size=100, test_size=50, deadline=1000.0 + 300, deadline_source="limit")
    first = estimate.after_epoch({"epoch": 0, "epoch_seconds": 20.0, "val_seconds": 4.0}, now=1000.0)
    assert first["expected_seconds_left"] == 9 * 24.0 + 4.0 * 50 / 100  # 9 epochs of 24 s, then half a validation
    assert first["fits_time_limit"] is True and estimate.warning(first, now=1000.0) is None
    second = estimate.after_epoch({"epoch": 1, "epoch_seconds": 40.0, "val_seconds": 6.0}, now=1100.0)
    assert second["seconds_per_epoch"] == 35.0 and second["expected_seconds_left"] == 8 * 35.0 + 5.0 * 0.5
    assert second["fits_time_limit"] is False
    said = estimate.warning(second, now=1100.0)
    assert said is not None and "limit ends at" in said and "about 5 more epochs fit" in said  # 200 s / 35 s
    assert estimate.warning(second, now=1100.0) is None  # said once
    assert deadline("90m", 1000.0) == (1000.0 + 5400, "--training.time_limit 90m")


def _documented_script(name: str) -> str:
    """The ```bash block of docs/training.md whose second line is `# <name>`."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if f"\n# {name}\n" in b]
    assert len(blocks) == 1, name
    return blocks[0]


def test_the_requeue_recipe_stopped_by_usr1_then_sigterm_ends_with_the_weights_of_a_straight_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/training.md's sbatch script as written, with SLURM_JOB_ID set and stand-ins for srun (it adds the test
    suite's small-run flags, with loader workers, RandAugment and dropout) and scontrol: job 1 gets USR1 (what
    --signal=USR1@90 sends) and requeues itself; job 2 gets SIGTERM in its whole process group (a preemption; the
    script dies with it); job 3 finishes with the weights of an uninterrupted run; job 4 exits at once."""
    from glovita.datasets.digits import prepare_digits

    prepare_digits(tmp_path / "data" / "digits")
    splits_file = tmp_path / "data" / "digits" / "splits.json"
    splits = json.loads(splits_file.read_text())
    splits_file.write_text(json.dumps({split: sorted(ids)[::10] for split, ids in splits.items()}))
    script = tmp_path / "train_requeue.sbatch"
    script.write_text(_documented_script("train_requeue.sbatch"))
    tools = tmp_path / "bin"
    tools.mkdir()
    small = ["--model.encoder.type", "test_resnet", "--dataloading.num_workers", "2", "--data.augmentation.image_size",
             "32", "--dataloading.batch_size", "8", "--training.epochs", "3", "--data.augmentation.train_policy",
             "randaugment", "--model.head.dropout", "0.2"]  # fmt: skip
    (tools / "srun").write_text(f'#!/bin/bash\necho $$ > "{tmp_path}/srun.pid"\nexec "$@" {" ".join(small)}\n')
    (tools / "scontrol").write_text(f'#!/bin/bash\necho "$@" >> "{tmp_path}/scontrol.log"\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "SLURM_JOB_ID": "4242", "PATH": f"{tools}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SLURM_JOB_END_TIME", None)
    run_dir = tmp_path / "experiments" / "digits" / "slurm-4242" / "0"

    said = []
    for attempt, (how, sig) in enumerate([("usr1", signal.SIGUSR1), ("group", signal.SIGTERM)]):
        job = subprocess.Popen(["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        _wait_for_lines(run_dir / "metrics.jsonl", attempt + 1, job)
        time.sleep(0.1)  # a few of the 18 steps into the next epoch
        train_pid = int((tmp_path / "srun.pid").read_text())
        if how == "usr1":
            os.kill(train_pid, sig)
            _, err = job.communicate(timeout=120)
            assert job.returncode == PREEMPTED_EXIT_CODE, err
        else:  # the whole job: the script, glovita_train and its loader workers
            os.killpg(job.pid, sig)
            _, err = job.communicate(timeout=120)
            began = time.perf_counter()
            while json.loads((run_dir / "runtime_info.json").read_text())["status"] == "running":
                assert time.perf_counter() - began < 60, "the run never recorded how it stopped"
                time.sleep(0.05)  # the script died at once; glovita_train is still writing its checkpoint
        info = json.loads((run_dir / "runtime_info.json").read_text())
        assert info["status"] == "preempted" and info["stop_signal"] == sig.name, err
        assert info["exit_code"] == PREEMPTED_EXIT_CODE and "--training.resume_mode auto" in info["resume_command"]
        assert "<td>continue with</td>" in (run_dir / "report.html").read_text()  # the report says how to go on
        said.append(info)
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"  # job 1 requeued itself
    stops = [torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True).get("epoch_progress")]
    assert stops[0] is not None  # job 2 stopped inside an epoch

    third = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    assert "Resuming " in third.stderr and (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    attempts = json.loads((run_dir / "runtime_info.json").read_text())["attempts"]
    assert [a["status"] for a in attempts] == ["preempted", "preempted", "completed"]

    monkeypatch.chdir(tmp_path)  # the same flags, uninterrupted
    main(["--data.dataset", "digits", "--model.encoder.no_pretrained", "--training.epochs", "30", *small,
          "--group", "straight"])  # fmt: skip
    straight = tmp_path / "experiments" / "digits" / "straight" / "0"
    _same_weights(_weights(straight), _weights(run_dir))
    assert _records(straight) == _records(run_dir)
    assert json.loads((run_dir / "test_metrics.json").read_text()) == json.loads(
        (straight / "test_metrics.json").read_text()
    )

    before = {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    began = time.perf_counter()
    fourth = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert fourth.returncode == 0 and "nothing to do (training.resume_mode auto)" in fourth.stderr
    assert time.perf_counter() - began < 30  # no training, no test pass: the interpreter and torch import
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before
