"""`glovita_sweep`: hyper-parameter search with Optuna over glovita_train's config fields.

Each trial is an ordinary run (`<experiments_dir>/<dataset>/<study>/trial_<n>/<fold>/`) of the glovita_train flags
given after `--` plus the trial's values; its objective is the run's best value of the best-checkpoint metric,
reported after every epoch to a median pruner. The study lives in an Optuna storage (SQLite by default, an RDB
URL for many machines): a killed sweep is continued by running the same command again, and several processes
can work on one study at once.
"""

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glovita.configs.base import dotted_fields
from glovita.configs.root import RootConfig
from glovita.configs.sweep import SweepConfig
from glovita.runtime.io import atomic_path, save_json
from glovita.runtime.progress import print_line

_TYPES = ("float", "int", "categorical")


def load_space(path: Path) -> dict[str, dict[str, Any]]:
    """The search space of a YAML/JSON file; every error names the file and the field."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"space file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"space file '{path}' is not valid YAML/JSON ({err}).") from err
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"space file '{path}' must map config fields to ranges, e.g. 'optimizer.lr: {{type: float, "
                         "low: 1.0e-4, high: 1.0e-1, log: true}'.")  # fmt: skip
    space: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        where = f"space file '{path}', {name}"
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise ValueError(f"{where}: needs 'type' (one of {', '.join(_TYPES)}), got {spec!r}.")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ValueError(f"{where}: a categorical field needs a non-empty 'choices' list.")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not isinstance(low, int | float) or not isinstance(high, int | float) or low >= high:
                raise ValueError(f"{where}: needs numbers low < high, got low={low!r} high={high!r}.")
            if spec.get("log") and low <= 0:
                raise ValueError(f"{where}: a log range needs low > 0, got {low}.")
        space[str(name)] = spec
    return space


def _candidates(spec: dict[str, Any]) -> list[Any]:
    return list(spec["choices"]) if spec["type"] == "categorical" else [spec["low"], spec["high"]]


def _flag_value(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


Parse = Callable[[list[str], str], RootConfig]
"""glovita_train's parser (cli.train.parse_root_config), handed in by the command: apps/ sits below cli/."""


def check_space(space: dict[str, dict[str, Any]], train_args: list[str], path: Path, parse: Parse) -> RootConfig:
    """The base config of the training flags; every space field must be a config field, and its range ends and
    choices must be values glovita_train accepts, all before the first trial starts."""
    for flag in ("--group", "--folds"):
        if flag in train_args:
            raise ValueError(f"glovita_sweep sets the group of each trial and trains one fold; drop {flag} from the "
                             "glovita_train flags.")  # fmt: skip
    base = _parse(parse, train_args, "the glovita_train flags after --")
    fields = dotted_fields(base.model_dump(mode="json"))
    for name, spec in space.items():
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"space file '{path}': {name!r} is not a field of this run's config.{hint}")
        for value in _candidates(spec):
            _parse(parse, [*train_args, f"--{name}", *_flag_value(value)], f"space file '{path}': {name}={value!r}")
    return base


def _parse(parse: Parse, args: list[str], what: str) -> RootConfig:
    import contextlib
    import io

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return parse(args, "glovita_sweep")
    except SystemExit as err:
        lines = [line.strip(" │╭╰─") for line in captured.getvalue().splitlines()]
        reason = next((line for line in lines if "error" in line.lower() and line), "") or " ".join(lines)[-400:]
        raise ValueError(f"{what} is not accepted by glovita_train: {reason.strip()}") from err


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    if spec["type"] == "categorical":
        return trial.suggest_categorical(name, spec["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False)))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))


def _storage(url: str) -> Any:
    """An RDB storage with heartbeats: a trial whose process was killed is marked failed after 2 minutes, so the
    study does not count it as running forever."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
    except (SQLAlchemyError, ImportError, ValueError) as err:  # a mistyped scheme, a missing driver, no server
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(
            f"--storage {url!r} cannot be opened ({reason}). Use sqlite:///path/to/sweeps.db, or an RDB URL such as "
            "postgresql://user:password@host/db with its driver installed."
        ) from err


def run_sweep(cfg: SweepConfig, train_args: list[str], parse: Parse) -> dict[str, Any]:
    """Run the study until it holds cfg.trials finished trials; write sweep_summary.json and the plots."""
    try:
        import optuna
    except ImportError as err:
        raise ValueError("glovita_sweep needs Optuna: pip install 'glovita[sweep]'.") from err
    from glovita.tasks.factory import build_named_tasks, build_task
    from glovita.tasks.keys import resolve_best_metric
    from glovita.training.run import run_training

    space = load_space(cfg.space)
    base = check_space(space, train_args, cfg.space, parse)
    metric, mode = resolve_best_metric(
        base.training.best_checkpoint_metric,
        build_task(base.data),
        base.training.ema_decay is not None,
        base.training.step.eval_log_keys,
        named=build_named_tasks(base.model),
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs)
        if cfg.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=cfg.study, storage=_storage(cfg.storage), load_if_exists=True, pruner=pruner,
        direction="maximize" if mode == "max" else "minimize",
    )  # fmt: skip
    # Workers sharing a study must not draw the same points: the sampler's seed adds the worker's index and the
    # number of trials the study held when this process joined (a worker started later draws anew).
    held = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + 100_003 * resolve_worker(cfg.worker) + held)
    recorded = study.user_attrs.get("metric")
    if recorded not in (None, metric):
        raise ValueError(f"Study {cfg.study!r} optimises {recorded}; these flags give {metric}. Use a new --study.")
    study.set_user_attr("metric", metric)
    folder = base.experiments_dir / base.data.dataset / cfg.study

    def objective(trial: Any) -> float:
        values = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        flags = [part for name, value in values.items() for part in (f"--{name}", *_flag_value(value))]
        config = _parse(parse, [*train_args, *flags], f"trial {trial.number}")
        config = config.model_copy(update={"group": f"{cfg.study}/trial_{trial.number:03d}"})
        pruned: list[int] = []

        def report(record: dict[str, Any]) -> str | None:
            epoch, value = int(record["epoch"]), record.get(metric)
            if value is None or value != value:  # NaN is not reported
                return None
            trial.report(float(value), step=epoch)
            if epoch + 1 < config.training.epochs and trial.should_prune():
                pruned.append(epoch)
                return f"pruned by the sweep ({metric} {value:.4f} is below the median of earlier trials)"
            return None

        print_line(f"trial {trial.number}: {' '.join(flags)}")
        try:
            result = run_training(config, ["glovita_sweep", *train_args, *flags], should_stop=report)
        except (ValueError, FloatingPointError) as err:  # a diverged or refused trial fails alone; the study goes on
            reason = " ".join(str(err).split())[:500]
            trial.set_user_attr("failure", reason)
            print_line(f"trial {trial.number} failed: {reason}")
            raise
        trial.set_user_attr("run_dir", str(result.run_dir))
        best = _best_value(result.run_dir, metric, result.best_epoch)
        if pruned:
            print_line(f"trial {trial.number} pruned after epoch {pruned[0] + 1}")
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0] + 1}")
        if best is None:
            raise ValueError(f"trial {trial.number} recorded no {metric} (see {result.run_dir}).")
        print_line(f"trial {trial.number} finished: {metric} {best:.4f}  ({' '.join(flags)})")
        return best

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < cfg.trials:
        print_line(f"study {cfg.study!r}: {done} of {cfg.trials} trials finished; running {cfg.trials - done} more.")
        # Other processes may work on the same study: stop once it holds cfg.trials finished trials in all.
        enough = optuna.study.MaxTrialsCallback(cfg.trials, states=finished)
        study.optimize(
            objective, n_trials=cfg.trials - done, catch=(ValueError, FloatingPointError), callbacks=[enough]
        )
    return _summarise(study, folder, metric, cfg)


WORKER_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_PROCID", "RANK")
"""Environment variables that number the processes of one job, read when --worker is unset."""


def resolve_worker(worker: int | None) -> int:
    """This process's index among the workers of a study: --worker, else the job's own numbering, else 0."""
    if worker is not None:
        return worker
    import os

    for name in WORKER_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _best_value(run_dir: Path, metric: str, best_epoch: int | None) -> float | None:
    from glovita.runtime.io import read_metrics

    best = next((r for r in read_metrics(run_dir) if r["epoch"] == best_epoch), None)
    return None if best is None else float(best[metric])


def _summarise(study: Any, folder: Path, metric: str, cfg: SweepConfig) -> dict[str, Any]:
    import optuna

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "study": cfg.study,
        "storage": cfg.storage,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "trials": [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": t.params,
                "run_dir": t.user_attrs.get("run_dir"),
                **({"failure": t.user_attrs["failure"]} if "failure" in t.user_attrs else {}),
            }  # fmt: skip
            for t in trials
        ],
    }
    if complete:
        best = study.best_trial
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                           "run_dir": best.user_attrs.get("run_dir")}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    save_json(summary, folder / "sweep_summary.json")
    plots = _plots(study, folder, len(complete), metric)
    states = ("complete", "pruned", "fail", "running")
    counts = {state: sum(t.state.name.lower() == state for t in trials) for state in states}
    best_text = (
        f"best {metric} {summary['best']['value']:.4f} (trial {summary['best']['number']}: {summary['best']['params']})"
        if complete
        else "no completed trial"
    )
    running = f", {counts['running']} running (here or elsewhere, or killed)" if counts["running"] else ""
    _print_ranking(summary, metric)
    print_line(f"study {cfg.study!r}: {counts['complete']} completed, {counts['pruned']} pruned, {counts['fail']} "
               f"failed{running}; {best_text}. Summary: {folder / 'sweep_summary.json'}"
               + (f"; plots: {', '.join(p.name for p in plots)}" if plots else ""))  # fmt: skip
    return summary


RANKED_ROWS = 10
"""Trials in the ranked table printed at the end of a sweep."""


def _print_ranking(summary: dict[str, Any], metric: str) -> None:
    """The completed trials, best first (the first RANKED_ROWS), one row each: rank, trial, value, parameters."""
    done = [t for t in summary["trials"] if t["state"] == "complete" and t["value"] is not None]
    if not done:
        return
    done.sort(key=lambda t: t["value"], reverse=summary["direction"] == "maximize")
    print_line(f"{'rank':>4}  {'trial':>5}  {metric:>{max(len(metric), 8)}}  parameters")
    for rank, trial in enumerate(done[:RANKED_ROWS], 1):
        params = " ".join(f"{name}={_short(value)}" for name, value in trial["params"].items())
        print_line(f"{rank:>4}  {trial['number']:>5}  {trial['value']:>{max(len(metric), 8)}.4f}  {params}")
    if len(done) > RANKED_ROWS:
        print_line(f"      ({len(done) - RANKED_ROWS} more in sweep_summary.json)")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plots(study: Any, folder: Path, complete: int, metric: str = "") -> list[Path]:
    """Optuna's optimisation history and parameter importances as PNG (importances need 2 completed trials)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    makers: list[tuple[str, Any]] = [("optimization_history.png", optuna_plots.plot_optimization_history)]
    if complete >= 2:
        makers.append(("param_importances.png", optuna_plots.plot_param_importances))
    for name, make in makers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            try:
                axes = make(study)
            except (ValueError, RuntimeError) as err:  # e.g. importances of a parameter that never varied
                print_line(f"warning: {name} not drawn ({err}).")
                continue
        figure: Any = axes.figure if hasattr(axes, "figure") else plt.gcf()
        if name == "optimization_history.png" and hasattr(axes, "set_ylabel"):
            from matplotlib.ticker import MaxNLocator

            axes.set_ylabel(metric or "objective value")  # the metric's name, not Optuna's "Objective Value"
            axes.set_xlabel("trial")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
        figure.tight_layout()
        with atomic_path(folder / name) as tmp:
            figure.savefig(tmp, format="png", dpi=110)
        plt.close(figure)
        written.append(folder / name)
    return written
