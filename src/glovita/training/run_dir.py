"""The run directory: config snapshots, runtime info, metrics log, resume checks."""

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from glovita.configs.model import ModelConfig
from glovita.configs.root import RootConfig
from glovita.runtime.io import json_text, read_json, save_json

if TYPE_CHECKING:
    from glovita.training.checkpoints import ResumePoint

_RESUME_MAY_CHANGE = {
    ("training", "resume"),
    ("training", "resume_mode"),
    ("training", "epochs"),
    ("training", "checkpoint_every_n_steps"),
    ("training", "checkpoint_every_n_minutes"),
    ("training", "time_limit"),
    ("add_log",),
    ("group",),
}
"""Settings a continued run may change: how it is resumed, checkpointed and timed, not what it computes."""


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("glovita", "torch", "torchvision", "timm", "torchmetrics", "pydantic", "tyro", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> dict[str, Any] | None:
    """Commit (and dirty flag) of the GloViTa source checkout, when it is one."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def _differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[str]:
    if path in _RESUME_MAY_CHANGE:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), (*path, k))]
    return [] if old == new else [f"{'.'.join(path)}: {old!r} -> {new!r}"]


class RunDirectoryBusy(FileExistsError):
    """Another live process holds the run directory."""


def lock_paths(run_dir: Path) -> tuple[Path, Path]:
    """The lock file of a run directory and the file naming its holder, beside it in the group folder (so a run
    that fails before its first write leaves no run folder behind)."""
    return run_dir.parent / f".{run_dir.name}.lock", run_dir.parent / f".{run_dir.name}.lock.json"


@contextmanager
def exclusive_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process: a second writer fails at once, naming the holder (PID, host).

    The lock is an OS file lock (filelock), released by the kernel when its process dies, so a lock left by a
    killed run is taken over by the next one."""
    from filelock import FileLock, Timeout

    lock_file, holder_file = lock_paths(run_dir)
    created = [folder for folder in (lock_file.parent, *lock_file.parent.parents) if not folder.exists()]
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = json.loads(holder_file.read_text())
            who = f"PID {holder['pid']} on {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError):
            who = "a process that has not written its name yet"
        raise RunDirectoryBusy(
            f"'{run_dir}' is in use by another glovita_train ({who}). Wait for it to finish, or choose another "
            "--group (or --data.fold)."
        ) from None
    try:
        since = datetime.now().isoformat(timespec="seconds")
        save_json({"pid": os.getpid(), "host": socket.gethostname(), "since": since}, holder_file)
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()
        if not run_dir.exists():  # the run stopped before writing anything: leave no trace of it either
            lock_file.unlink(missing_ok=True)
            for folder in created:  # deepest first
                try:
                    folder.rmdir()
                except OSError:
                    break  # not empty: another run lives there


RunStart = Literal["new", "resume", "completed"]
"""How a run begins: in an empty folder, from its checkpoint, or not at all (it completed before)."""


def completed_run(run_dir: Path) -> dict[str, Any] | None:
    """runtime_info.json of a run that completed (its status says so), else None."""
    info = read_json(run_dir / "runtime_info.json")
    return info if info.get("status") == "completed" else None


def settle_run_dir(run_dir: Path, config: RootConfig, mode: str | None, now: datetime) -> RunStart:
    """Apply training.resume_mode to the run folder (rank 0, before any rank reads it) and say how the run begins.

    Nothing is deleted: restart moves the run to <fold>.restarted-<time>; best copies it to <fold>.after-best-<time>
    before rewinding it to best.pt; auto moves aside a run whose checkpoints are all damaged before starting anew."""
    from glovita.runtime.progress import print_line

    if mode is None:
        return "new"
    if mode == "strict":
        return "resume"
    if mode == "restart":
        if run_dir.exists():
            print_line(
                f"training.resume_mode restart: moved the earlier run to '{move_aside(run_dir, 'restarted', now)}'."
            )
        return "new"
    if mode == "best":
        rewind_to_best(run_dir, config, now)
        return "resume"
    # auto
    if not (run_dir / "config.json").is_file():
        return "new"
    _check_same_settings(run_dir, config, "training.resume_mode auto")
    if completed_run(run_dir) is not None:
        return "completed"
    folder = run_dir / "checkpoints"
    if not folder.is_dir() or not any(folder.glob("*.pt")):
        return "new"  # an attempt that stopped before its first checkpoint: prepare_run_dir starts it again
    from glovita.training.checkpoints import newest_intact_checkpoint

    try:
        newest_intact_checkpoint(folder)
    except ValueError as err:
        moved = move_aside(run_dir, "damaged", now)
        print_line(f"training.resume_mode auto: {err} Moved the run to '{moved}'; starting it again.")
        return "new"
    return "resume"


def move_aside(run_dir: Path, label: str, now: datetime) -> Path:
    """Rename the run folder to <fold>.<label>-<time> (a unique name beside it) and return the new path."""
    base = run_dir.with_name(f"{run_dir.name}.{label}-{now:%Y%m%d-%H%M%S}")
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    run_dir.rename(target)
    return target


def rewind_to_best(run_dir: Path, config: RootConfig, now: datetime) -> Path:
    """training.resume_mode best: copy the run to <fold>.after-best-<time> (checkpoints hard-linked, other files
    copied), then make best.pt the run's last.pt, drop the later epoch checkpoints and metric lines from the run
    folder, and return the copy. The continued run's metrics.jsonl ends at the best epoch."""
    from glovita.runtime.io import link_or_copy
    from glovita.runtime.progress import print_line
    from glovita.training.checkpoints import CHECKSUMS, damage, load_checkpoint

    best = run_dir / "checkpoints" / "best.pt"
    if not best.is_file():
        raise FileNotFoundError(
            f"training.resume_mode best: '{best}' does not exist. Check --group, --data.fold and --experiments_dir, "
            "or continue from last.pt with --training.resume_mode strict."
        )
    problem = damage(best)
    if problem is not None:
        raise ValueError(
            f"training.resume_mode best: '{best}' is damaged ({problem}). Use --training.resume_mode strict."
        )
    _check_same_settings(run_dir, config, "training.resume_mode best")
    best_epoch = int(load_checkpoint(best)["epoch"])
    aside = move_aside(run_dir, "after-best", now)
    import shutil

    shutil.copytree(aside, run_dir, copy_function=lambda src, dst: _copy_or_link(Path(src), Path(dst), link_or_copy))
    folder = run_dir / "checkpoints"
    sums = read_json(run_dir / CHECKSUMS)
    for path in folder.glob("epoch_*.pt"):
        if int(path.stem.split("_")[1]) > best_epoch:
            path.unlink()
            sums.pop(path.name, None)
    link_or_copy(best, folder / "last.pt")
    if "best.pt" in sums:
        sums["last.pt"] = sums["best.pt"]
    save_json(sums, run_dir / CHECKSUMS)
    truncate_metrics(run_dir, best_epoch + 1)
    print_line(
        f"training.resume_mode best: continuing from best.pt (epoch {best_epoch + 1}); the run as it was is in "
        f"'{aside}'."
    )
    return aside


def _copy_or_link(source: Path, target: Path, link: Any) -> None:
    """Checkpoints are hard-linked (they are replaced by rename, never changed in place); other files copied."""
    import shutil

    if source.suffix == ".pt":
        link(source, target)
    else:
        shutil.copy2(source, target)


def _check_same_settings(run_dir: Path, config: RootConfig, flag: str) -> None:
    """Refuse to continue a run whose config.json differs in what it computes (training.epochs may grow)."""
    saved = json.loads((run_dir / "config.json").read_text())
    changed = _differences(saved, config.model_dump(mode="json"))
    if changed:
        raise ValueError(
            f"{flag}: settings differ from the run in '{run_dir}': {'; '.join(changed[:8])}. "
            "Only training.epochs may change on resume; start a new --group for other changes."
        )


def prepare_run_dir(run_dir: Path, config: RootConfig, resume: bool) -> "ResumePoint | None":
    """Refuse to overwrite a finished run; on resume, require last.pt and the same settings, and return the
    checkpoint to continue from (read once). Creates nothing: the folder appears with the config snapshots, once
    data and model are known to be valid."""
    config_file = run_dir / "config.json"
    if not resume:
        if config_file.exists() and (run_dir / "checkpoints" / "last.pt").is_file():
            raise FileExistsError(
                f"'{run_dir}' already holds a run. Pass --training.resume (or --training.resume_mode "
                "auto|best|restart) to continue it, or choose another --group."
            )
        if config_file.exists():  # an earlier attempt stopped before its first checkpoint: nothing to keep
            from glovita.runtime.progress import print_line

            print_line(f"'{run_dir}' holds an attempt that stopped before its first checkpoint; starting it again.")
            for name in ("config.json", "resolved_config.json", "metrics.jsonl"):
                (run_dir / name).unlink(missing_ok=True)
        return None
    if not config_file.is_file() or not (run_dir / "checkpoints" / "last.pt").is_file():
        raise FileNotFoundError(
            f"training.resume: no run to continue at '{run_dir}' (needs config.json and checkpoints/last.pt). "
            "Check --group, --data.fold and --experiments_dir."
        )
    _check_same_settings(run_dir, config, "training.resume")
    from glovita.training.checkpoints import newest_intact_checkpoint

    start = newest_intact_checkpoint(run_dir / "checkpoints")
    done = epochs_done(start.checkpoint)
    if done > config.training.epochs:
        raise ValueError(
            f"training.resume: the run in '{run_dir}' has already trained {done} epochs, more than "
            f"training.epochs={config.training.epochs}. Pass --training.epochs {done} or more (more trains on)."
        )
    return start


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """Epochs a checkpoint has finished: its epoch and the ones before, or only the ones before when it was written
    inside its epoch (checkpoint_every_n_steps, preemption)."""
    return int(checkpoint["epoch"]) + (0 if "epoch_progress" in checkpoint else 1)


def write_config_files(run_dir: Path, config: RootConfig, resolved: dict[str, Any]) -> None:
    """config.json (what the user asked) and resolved_config.json (what was derived), before the first step."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_json(config.model_dump(mode="json"), run_dir / "config.json")
        save_json(resolved, run_dir / "resolved_config.json")
    except OSError as err:
        raise OSError(f"Cannot write the config snapshots into '{run_dir}': {err}") from err


def runtime_info(argv: list[str], device: str, device_name: str, started: datetime) -> dict[str, Any]:
    return {
        "status": "running",
        "command": argv,
        "cwd": str(Path.cwd()),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": device,
        "device_name": device_name,
        "versions": package_versions(),
        "git": git_commit(),
        "started_at": started.isoformat(timespec="seconds"),
        "config_file": _config_file(argv),
    }


def _config_file(argv: list[str]) -> str | None:
    """The --config file the command started from (absolute), if any."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return str(Path(argv[i + 1]).resolve())
        if arg.startswith("--config="):
            return str(Path(arg.split("=", 1)[1]).resolve())
    return None


def earlier_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """(started_at, finished_at, status) of the earlier attempts of this run, from its runtime_info.json."""
    try:
        previous = json.loads((run_dir / "runtime_info.json").read_text())
    except (OSError, ValueError):
        return []
    if "attempts" in previous:
        return list(previous["attempts"])
    keys = ("started_at", "finished_at", "status")
    return [{key: previous.get(key) for key in keys}]


def write_runtime_info(run_dir: Path, info: dict[str, Any]) -> None:
    """runtime_info.json: this attempt's details, and every attempt's start, end and status in `attempts`."""
    current = {key: info.get(key) for key in ("started_at", "finished_at", "status")}
    details = {key: value for key, value in info.items() if key != "earlier_attempts"}
    save_json({**details, "attempts": [*info.get("earlier_attempts", []), current]}, run_dir / "runtime_info.json")


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write(json_text(record) + "\n")


def truncate_metrics(run_dir: Path, first_epoch: int) -> None:
    """Drop metric lines of epochs >= first_epoch (written after the checkpoint a resume starts from)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["epoch"] < first_epoch]
    path.write_text("".join(f"{line}\n" for line in kept))


def load_run_config(run_dir: Path) -> RootConfig:
    """The RootConfig saved in a run directory's config.json."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"'{path}' does not exist: '{run_dir}' is not a GloViTa run directory. A checkpoint must stay in "
            "the checkpoints/ folder of its run, next to config.json."
        )
    try:
        return RootConfig.model_validate(json.loads(path.read_text()))
    except ValidationError as err:
        from glovita.configs.extensions import unknown_tag

        reason = unknown_tag(err) or str(err).splitlines()[0]
        raise ValueError(f"'{path}' is not a valid GloViTa config ({reason}).") from err
    except ValueError as err:
        raise ValueError(f"'{path}' is not a valid GloViTa config ({str(err).splitlines()[0]}).") from err


def without_pretrained_weights(model: ModelConfig) -> ModelConfig:
    """The run's model config with the encoder built empty: a checkpoint holds every weight, so a run is restored
    without its pretrained file or cache (which may be gone, or changed since) and without reading it."""
    if not getattr(model.encoder, "pretrained", False):
        return model
    return model.model_copy(update={"encoder": model.encoder.model_copy(update={"pretrained": False})})
