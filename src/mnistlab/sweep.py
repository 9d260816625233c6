"""`mnistlab sweep`: search a recipe's settings with Ray Tune, each trial an ordinary mnistlab run.

A space is a list of dimensions, `SETTING=KIND:VALUES` (or a TOML file with a `[space]` table of the same
strings): `lr=loguniform:0.1:2`, `warmup=uniform:0:1`, `batch_size=choice:128,256,512`, `depth=int:1:3`
(both ends included), `model=grid:fastnet,allconv`; a setting is any `mnistlab train` setting (`--set`'s
names), `augment.rotate` or `model_options.width` for a table's key. Each trial trains in its own run folder
under the sweep's `trials/` and reports its validation figures to Tune after every epoch, so that ASHA
stops the poor ones early; trials never look at the test set. At the end the best trial's settings are
written as a recipe (`train --recipe best-recipe.toml` trains it again), and the best trial is tested once.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from mnistlab._io import write_json, write_text
from mnistlab.cluster import INSTALL, connect, import_ray
from mnistlab.config import merge, parse_value, read_toml
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.recipes import Recipe, load_recipe
from mnistlab.runs import RunFolder, SweepFolder
from mnistlab.training.callbacks import Callback, Monitor

KINDS = ("loguniform", "uniform", "int", "choice", "grid")
SEARCHES = ("random", "optuna", "grid")
SCHEDULERS = ("asha", "none")
TABLE_SETTINGS = ("augment", "model_options")  # settings that are tables: swept by key, augment.rotate


@dataclass(frozen=True)
class Dimension:
    """One swept setting: `kind` loguniform/uniform/int with `values` (low, high), or choice/grid with the
    values themselves."""

    setting: str
    kind: str
    values: tuple

    @property
    def spec(self) -> str:
        if self.kind in ("choice", "grid"):
            return f"{self.setting}={self.kind}:{','.join(map(str, self.values))}"
        return f"{self.setting}={self.kind}:{self.values[0]}:{self.values[1]}"

    @property
    def axis(self) -> str:
        """How a plot spreads its values: "log", "linear" or "category"."""
        return {"loguniform": "log", "uniform": "linear", "int": "linear"}.get(self.kind, "category")

    def tune_domain(self, grid: bool = False) -> Any:
        """Tune's sampler of it; in a grid search, listed choices are the grid's values too."""
        from ray import tune

        low, high = self.values[0], self.values[-1]
        if self.kind == "grid" or (grid and self.kind == "choice"):
            return tune.grid_search(list(self.values))
        return {"loguniform": lambda: tune.loguniform(low, high), "uniform": lambda: tune.uniform(low, high),
                "int": lambda: tune.randint(low, high + 1), "choice": lambda: tune.choice(list(self.values))
                }[self.kind]()


def parse_dimension(text: str) -> Dimension:
    """"lr=loguniform:0.1:2" -> Dimension("lr", "loguniform", (0.1, 2.0)); one clear error when it is not
    that."""
    setting, sep, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    setting, kind = setting.strip().replace("-", "_"), kind.strip()
    form = f"SETTING=KIND:VALUES with KIND one of {', '.join(KINDS)}, e.g. lr=loguniform:0.1:2 or " \
           "batch_size=choice:256,512"
    if not sep or not setting or kind not in KINDS or not rest.strip():
        raise ConfigError(f"--space {text!r} is not {form}")
    _check_setting_name(setting, text)
    if kind in ("choice", "grid"):
        values = tuple(parse_value(v.strip()) for v in rest.split(",") if v.strip())
        if not values:
            raise ConfigError(f"--space {text!r}: no values to choose from")
        return Dimension(setting, kind, values)
    ends = rest.split(":")
    try:
        low, high = (int(e) if kind == "int" else float(e) for e in ends)
    except ValueError:
        raise ConfigError(f"--space {text!r}: {kind} takes LOW:HIGH, two {'whole ' if kind == 'int' else ''}"
                          "numbers") from None
    if not low < high and not (kind == "int" and low == high):
        raise ConfigError(f"--space {text!r}: the range {low} to {high} is empty; give LOW below HIGH")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"--space {text!r}: a loguniform range must be above 0")
    return Dimension(setting, kind, (low, high))


def _check_setting_name(setting: str, text: str) -> None:
    import dataclasses

    from mnistlab.settings import AugmentConfig, TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    top, _, key = setting.partition(".")
    if top not in names or (key and top not in TABLE_SETTINGS) or (top in TABLE_SETTINGS and not key):
        raise ConfigError(f"--space {text!r}: {setting!r} is not a training setting; the settings are "
                          f"`mnistlab train --print-settings`'s keys (a table's key as augment.rotate or "
                          f"model_options.width)")
    if top == "augment" and key not in {f.name for f in dataclasses.fields(AugmentConfig)}:
        raise ConfigError(f"--space {text!r}: augment has no {key!r}; it has "
                          f"{', '.join(f.name for f in dataclasses.fields(AugmentConfig))}")


def read_space(specs: Sequence[str]) -> list[Dimension]:
    """Dimensions from `--space` values, each a dimension or a TOML file whose `[space]` table maps settings to
    the same strings (`lr = "loguniform:0.1:2"`)."""
    dimensions = []
    for spec in specs:
        if spec.endswith(".toml"):
            table = read_toml(spec).get("space")
            if not isinstance(table, dict) or not table:
                raise ConfigError(f"{spec}: a space file has a [space] table, e.g. lr = \"loguniform:0.1:2\"")
            dimensions += [parse_dimension(f"{k}={v}") for k, v in _flatten(table).items()]
        else:
            dimensions.append(parse_dimension(spec))
    seen = [d.setting for d in dimensions]
    if not dimensions:
        raise ConfigError("a sweep needs a space: --space SETTING=KIND:VALUES (e.g. lr=loguniform:0.1:2), "
                          "one per setting, or --space FILE.toml")
    if len(set(seen)) < len(seen):
        raise ConfigError(f"--space names {max(seen, key=seen.count)!r} twice")
    return dimensions


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def settings_of(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as settings: {"augment.rotate": 5} -> {"augment": {"rotate": 5}}."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        top, _, sub = key.partition(".")
        if sub:
            out.setdefault(top, {})[sub] = value
        else:
            out[key] = value
    return out


@dataclass
class SweepSpec:
    """What a sweep was asked to do: `sweep.json`, from which `--resume` goes on."""

    recipe: str  # a recipe name or the path of a recipe file
    space: list[str]  # the dimensions, as --space spells them
    fixed: dict[str, Any]  # settings every trial shares (--set), over the recipe's
    trials: int = 16
    metric: str = "val_accuracy"
    search: str = "random"
    scheduler: str = "asha"
    grace_epochs: int = 1
    reduction_factor: int = 3
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    concurrent: int = 0  # 0: as many as the resources allow
    seed: int = 0
    address: str | None = None

    @property
    def mode(self) -> str:
        """"max" for an accuracy, "min" for a loss: the rule of every monitor of a run."""
        return Monitor(self.metric).mode

    def dimensions(self) -> list[Dimension]:
        return read_space(self.space)

    def base_settings(self) -> dict[str, Any]:
        """The recipe's settings with the shared ones over them, as every trial starts from; validation is
        on (a held-out split of the training images) when the recipe has none, since trials choose on it."""
        recipe = load_recipe(self.recipe)
        device = "cuda" if self.gpus_per_trial else "cpu"
        settings = merge(recipe.settings_for(device), self.fixed)
        if settings.get("validation", "split") == "none":
            settings["validation"] = "split"
        return {**settings, "test": False, "figures": False, "device": device, "tta": False}

    def epochs(self) -> int:
        """The most epochs a trial trains (ASHA's horizon)."""
        from mnistlab.training import build_config

        swept = [d for d in self.dimensions() if d.setting == "epochs"]
        return max(swept[0].values) if swept else build_config(overrides=self.base_settings()).epochs


def check(spec: SweepSpec) -> list[Dimension]:
    """Everything that can be checked before Ray starts, so that bad input leaves nothing behind."""
    from mnistlab.training import build_config

    for name, value, allowed in (("search", spec.search, SEARCHES), ("scheduler", spec.scheduler, SCHEDULERS)):
        if value not in allowed:
            raise ConfigError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
    if spec.metric not in ("val_accuracy", "val_loss"):
        raise ConfigError(f"--metric must be val_accuracy or val_loss (trials choose on validation data), "
                          f"got {spec.metric!r}")
    if spec.trials < 1 or spec.cpus_per_trial <= 0 or spec.gpus_per_trial < 0:
        raise ConfigError("--trials and --cpus-per-trial must be positive, --gpus-per-trial at least 0")
    dimensions = spec.dimensions()
    if spec.search == "grid" and any(d.kind not in ("grid", "choice") for d in dimensions):
        raise ConfigError("--search grid needs listed values for every setting (lr=grid:0.1,0.2,0.4), not ranges")
    if spec.search == "optuna" and any(d.kind == "grid" for d in dimensions):
        raise ConfigError("--search optuna samples its own values: use choice:, not grid:, with it")
    base = spec.base_settings()
    build_config(overrides=base)
    for d in dimensions:  # every end of every range, every choice: the settings must accept it
        for value in d.values:
            try:
                build_config(overrides=merge(base, settings_of({d.setting: value})))
            except ConfigError as e:
                raise ConfigError(f"--space {d.spec}: {value!r} is not a value for {d.setting}: {e}") from None
    return dimensions


class ReportToTune(Callback):
    """Tells Tune each finished epoch's figures and the trial's run folder. Called after the epoch's
    checkpoint is saved, since Tune stops a trial inside `tune.report` (by raising SystemExit); the last epoch
    is reported by `run_trial` once the run is recorded."""

    after_checkpoint = True

    def __init__(self, trials: Path):
        self.trials = trials  # the folder of the trials' run folders

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch < trainer.config.epochs and not trainer.stop_training:
            report(logs, self.trials / trainer.model_meta["run"])


def report(logs: dict[str, Any], run_path: Path) -> None:
    from ray import tune

    tune.report({**{k: v for k, v in logs.items() if isinstance(v, (int, float))}, "run": str(run_path)})


def run_trial(params: dict[str, Any], sweep_path: str) -> None:
    """One trial, in a Ray worker: train the recipe with the sampled settings in a run folder under the
    sweep's trials/ named after the trial, or, when a restored sweep runs the trial again, resume that
    folder (a finished one only reports its last epoch)."""
    import torch
    from ray import tune

    from mnistlab.training import build_config, resume, train

    sweep = SweepFolder.open(sweep_path)
    spec = SweepSpec(**sweep.spec()["request"])
    torch.set_num_threads(max(1, int(spec.cpus_per_trial)))
    reporter = ReportToTune(sweep.trials)
    name = "trial-" + tune.get_context().get_trial_id().split("_")[-1]
    earlier = [RunFolder(p) for p in sorted(sweep.trials.glob(f"{name}-*")) if RunFolder(p).exists()]
    if earlier and earlier[-1].state() == "finished":
        run = earlier[-1]
    elif earlier:
        run = resume(earlier[-1].path, progress="quiet", callbacks=[reporter])
    else:
        config = build_config(overrides=merge(spec.base_settings(), settings_of(params)))
        run = train(config, sweep.trials, name, progress="quiet", callbacks=[reporter],
                    command=f"mnistlab sweep --resume {sweep.path}  (its trial {name})")
    history = run.history()
    if history:
        report(history[-1], run.path)


class _TrialLines:
    """A line per trial as it ends (`ray.tune.Callback` is made its base where Ray is imported, Ray being
    optional)."""

    def __init__(self, log, metric: str):
        self.log, self.metric = log, metric

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trial, "")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, "  FAILED (its run folder's run.json says why)")

    def _line(self, trial, note: str) -> None:
        result = trial.last_result or {}
        settings = " ".join(f"{k}={_short(v)}" for k, v in (trial.config or {}).items())
        figure = result.get(self.metric)
        figure = f"{self.metric} {figure:.4f}" if isinstance(figure, float) else "no result"
        self.log(f"trial {trial.trial_id.split('_')[-1]}: {settings}  {figure} after "
                 f"{result.get('training_iteration', 0)} epochs{note}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep(spec: SweepSpec, runs_dir: str | os.PathLike = "runs/sweeps", name: str | None = None,
          log: Callable[[str], None] = print) -> SweepFolder:
    """Run a sweep in a new folder `<runs_dir>/<name or RECIPE-sweep>-<n>` (see `runs.SweepFolder`)."""
    import_ray()
    dimensions = check(spec)
    if spec.search == "optuna":
        _import_optuna()
    if spec.address:
        from mnistlab.cluster import check_address

        check_address(spec.address)
    folder = SweepFolder.create(runs_dir, name or f"{Path(spec.recipe).stem}-sweep")
    request = asdict(spec)
    if Path(spec.recipe).suffix == ".toml":
        request["recipe"] = str(Path(spec.recipe).resolve())
    folder.write_spec({"request": request, "state": "running", "started": time.time()})
    return _run(folder, spec, dimensions, log, restore=False)


def resume_sweep(path: str | os.PathLike, log: Callable[[str], None] = print) -> SweepFolder:
    """Go on with an interrupted sweep: Tune restores it, finished trials are kept, unfinished ones resume
    their run folders."""
    folder = SweepFolder.open(path)
    spec = SweepSpec(**folder.spec()["request"])
    if not (folder.tune / "search").is_dir():
        raise MnistlabError(f"{folder.path} has no Tune state to restore (it stopped before Tune started); "
                            "start the sweep again")
    return _run(folder, spec, spec.dimensions(), log, restore=True)


def _import_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise MnistlabError(f"--search optuna needs Optuna, which is not installed here: {INSTALL}") from None


def _run(folder: SweepFolder, spec: SweepSpec, dimensions: list[Dimension], log, restore: bool) -> SweepFolder:
    try:
        return _search(folder, spec, dimensions, log, restore)
    except KeyboardInterrupt:
        folder.write_spec({**folder.spec(), "state": "interrupted"})
        log(f"interrupted; finished trials are kept: mnistlab sweep --resume {folder.path} goes on")
        raise
    except BaseException as error:
        folder.write_spec({**folder.spec(), "state": "failed", "error": str(error) or type(error).__name__})
        raise


def _search(folder: SweepFolder, spec: SweepSpec, dimensions: list[Dimension], log, restore: bool
            ) -> SweepFolder:
    started = time.perf_counter()
    with connect(spec.address) as ray:
        from ray import tune

        trainable = tune.with_resources(tune.with_parameters(run_trial, sweep_path=str(folder.path.resolve())),
                                        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
        callback = type("TrialLines", (_TrialLines, tune.Callback), {})(log, spec.metric)
        run_config = tune.RunConfig(storage_path=str(folder.tune.resolve()), name="search", verbose=0,
                                    callbacks=[callback])
        if restore:
            tuner = tune.Tuner.restore(str((folder.tune / "search").resolve()), trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            grid = spec.search == "grid"
            tuner = tune.Tuner(trainable, param_space={d.setting: d.tune_domain(grid) for d in dimensions},
                               tune_config=_tune_config(spec), run_config=run_config)
        log(f"sweep {folder.path}: {_trial_count(spec, dimensions)} trials of {spec.recipe} on "
            f"{ray.cluster_resources().get('CPU', 0):.0f} CPUs, {spec.cpus_per_trial:g} per trial; "
            f"{spec.search} search, {'ASHA' if spec.scheduler == 'asha' else 'no early stopping'}")
        results = tuner.fit()
        # on Ctrl-C Tune saves its state and returns: trials not done (not started, or cut off) say it
        if any(r.error is None and not (r.metrics or {}).get("done") for r in results):
            raise KeyboardInterrupt
        rows = trial_rows(folder, results, spec, dimensions)
    return _finish(folder, spec, dimensions, rows, time.perf_counter() - started, log)


def _trial_count(spec: SweepSpec, dimensions: list[Dimension]) -> int:
    if spec.search == "grid":
        return math.prod(len(d.values) for d in dimensions)
    return spec.trials


def _tune_config(spec: SweepSpec):
    from ray import tune

    search_alg, scheduler = None, None
    if spec.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=spec.seed)
    elif spec.search == "random":
        from ray.tune.search import BasicVariantGenerator

        search_alg = BasicVariantGenerator(random_state=spec.seed)
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=spec.epochs(),
                                  grace_period=spec.grace_epochs, reduction_factor=spec.reduction_factor)
    num_samples = 1 if spec.search == "grid" else spec.trials
    # reused workers: a trial then costs no new process with its imports (measured: docs/scaling.md)
    return tune.TuneConfig(metric=spec.metric, mode=spec.mode, search_alg=search_alg, scheduler=scheduler,
                           num_samples=num_samples, max_concurrent_trials=spec.concurrent or None,
                           reuse_actors=True)


def trial_rows(folder: SweepFolder, results, spec: SweepSpec, dimensions: list[Dimension]) -> list[dict[str, Any]]:
    """One row per trial, best first: its settings, its best validation figure (from its run folder's history),
    epochs run and how it ended (finished, stopped early by the scheduler, failed)."""
    epochs = spec.epochs()
    rows = []
    for result in results:
        config = {d.setting: result.config.get(d.setting) for d in dimensions}
        run_path = (result.metrics or {}).get("run")
        run = RunFolder(run_path) if run_path else None
        history = run.history() if run is not None and run.exists() else []
        figures = [r[spec.metric] for r in history if r.get(spec.metric) is not None]
        best = (max if spec.mode == "max" else min)(figures) if figures else None
        planned = run.settings().get("epochs", epochs) if run is not None and run.exists() else epochs
        if result.error is not None:
            state = "failed"
        elif run is not None and run.state() == "interrupted" and len(history) < planned:
            state = "stopped early"
        else:
            state = "finished"
        rows.append({"trial": Path(run_path).name if run_path else "-", "settings": config, spec.metric: best,
                     "epochs": len(history), "state": state, "run": run_path,
                     "error": str(result.error).splitlines()[0] if result.error is not None else None})
    sign = -1 if spec.mode == "max" else 1
    rows.sort(key=lambda r: (r[spec.metric] is None, sign * (r[spec.metric] or 0)))
    return rows


def _finish(folder: SweepFolder, spec: SweepSpec, dimensions: list[Dimension], rows: list[dict[str, Any]],
            seconds: float, log) -> SweepFolder:
    from mnistlab import plots

    best = next((r for r in rows if r[spec.metric] is not None), None)
    summary: dict[str, Any] = {"trials": len(rows), "seconds": round(seconds, 1),
                               "stopped_early": sum(r["state"] == "stopped early" for r in rows),
                               "failed": sum(r["state"] == "failed" for r in rows)}
    if best is not None:
        summary["best"] = {"trial": best["trial"], "settings": best["settings"], spec.metric: best[spec.metric],
                           "test": _test_once(best["run"])}
        write_text(folder.file(SweepFolder.BEST_RECIPE), best_recipe(spec, best, folder))
    write_json(folder.file(SweepFolder.TABLE_JSON), {"summary": summary, "trials": rows})
    table = format_trials(rows, spec, dimensions)
    write_text(folder.file(SweepFolder.TABLE_MD), f"{_header(folder, spec, summary)}\n\n{table}")
    plots.sweep_scatter(rows, [(d.setting, d.axis) for d in dimensions], spec.metric,
                        folder.file(SweepFolder.PLOT), f"{folder.name}: {spec.recipe}")
    folder.write_spec({**folder.spec(), "state": "finished", "summary": summary})
    log(f"\n{table}\n{_header(folder, spec, summary)}")
    if best is not None:
        log(f"best recipe: {folder.file(SweepFolder.BEST_RECIPE)}  (mnistlab train --recipe "
            f"{folder.file(SweepFolder.BEST_RECIPE)} trains it again)")
    return folder


def _test_once(run_path: str) -> dict[str, float]:
    """The best trial's test figures: the only time a sweep looks at the test set."""
    from mnistlab.evaluation import evaluate_saved

    _, _, result = evaluate_saved(run_path, "test")
    return {"test_accuracy": result["accuracy"], "test_loss": result["loss"]}


def _header(folder: SweepFolder, spec: SweepSpec, summary: dict[str, Any]) -> str:
    from mnistlab.devices import machine_summary

    line = (f"sweep {folder.name}, {time.strftime('%Y-%m-%d')}, {machine_summary(threads=False)}: "
            f"{summary['trials']} trials of {spec.recipe} ({spec.search} search, "
            f"{'ASHA' if spec.scheduler == 'asha' else 'no early stopping'}), {summary['stopped_early']} stopped "
            f"early, {summary['failed']} failed, {summary['seconds']:.0f} s")
    best = summary.get("best")
    if best:
        line += (f"; best {best['trial']}: {spec.metric} {best[spec.metric]:.4f}, tested once: test accuracy "
                 f"{best['test']['test_accuracy']:.4f}")
    return line


def format_trials(rows: list[dict[str, Any]], spec: SweepSpec, dimensions: list[Dimension]) -> str:
    names = [d.setting for d in dimensions]
    lines = ["| trial | " + " | ".join(names) + f" | {spec.metric} | epochs | state |",
             "|---|" + "---:|" * len(names) + "---:|---:|---|"]
    for r in rows:
        figure = "-" if r[spec.metric] is None else f"{r[spec.metric]:.4f}"
        lines.append(f"| {r['trial']} | " + " | ".join(_short(r["settings"][n]) for n in names)
                     + f" | {figure} | {r['epochs']} | {r['state']} |")
    return "\n".join(lines) + "\n"


def best_recipe(spec: SweepSpec, best: dict[str, Any], folder: SweepFolder) -> str:
    """The best trial's settings as a recipe file: the recipe's settings, the shared ones and the values
    found, so that `mnistlab train --recipe FILE` trains that trial again (and tests it)."""
    import tomli_w

    recipe: Recipe = load_recipe(spec.recipe)
    settings = merge(merge(recipe.settings, spec.fixed), settings_of(best["settings"]))
    if settings.get("validation", "split") == "none":
        settings["validation"] = "split"
    meta = {"title": f"{recipe.name} with the settings that sweep {folder.name} found best",
            "source": f"mnistlab sweep {folder.path}: trial {best['trial']}, chosen on validation data",
            "published": {spec.metric: round(best[spec.metric], 6)}}
    return tomli_w.dumps({"recipe": meta, "settings": settings})
