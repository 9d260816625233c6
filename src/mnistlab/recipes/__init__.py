"""Recipes: named training settings, with the published result they reproduce and where it comes from.

A recipe is a TOML file: a `[recipe]` table (title, source, published figures, optional `ensemble = N`,
optional `train_accuracy_epochs = [FIRST, LAST]` where the tutorial's printed training accuracy is a metric
never reset, so its mean over those epochs, and for mnistlab's records a `target`: the test accuracy to
reach and the training seconds allowed on the reference 2-core CPU and on an H100), a `[settings]` table
of `TrainConfig` keys, and optionally a `[cuda]` table of settings that replace those when the run is on a
CUDA GPU (a record's GPU version: larger batches, CUDA graphs). The tutorial recipes ship in this folder; a
user's own recipe file is given by its path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mnistlab.config import merge, read_toml
from mnistlab.errors import ConfigError

if TYPE_CHECKING:
    from mnistlab.runs import RunFolder
    from mnistlab.training import TrainConfig
    from mnistlab.training.callbacks import Callback

__all__ = ["RECIPES_DIR", "Recipe", "list_recipes", "load_recipe", "train_recipe"]

RECIPES_DIR = Path(__file__).parent


@dataclass
class Recipe:
    name: str
    title: str
    source: str
    settings: dict[str, Any]
    published: dict[str, float] = field(default_factory=dict)
    ensemble: int = 0  # > 1: train this many seeds and average them
    target: dict[str, float] = field(default_factory=dict)  # records: test_accuracy, cpu_seconds, h100_seconds, ...
    path: Path | None = None
    cuda: dict[str, Any] = field(default_factory=dict)  # settings that replace `settings`' on a CUDA GPU
    # the epochs (first, last) over which the tutorial's training accuracy accumulated; () for the last epoch's
    train_accuracy_epochs: tuple[int, ...] = ()

    def settings_for(self, device: str = "auto") -> dict[str, Any]:
        """The settings for a run on `device` (auto: a GPU if there is one): with the [cuda] table on a GPU."""
        if not self.cuda:
            return dict(self.settings)
        import torch

        on_gpu = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
        return merge(self.settings, self.cuda) if on_gpu else dict(self.settings)

    def config(self, config_file: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
               ) -> TrainConfig:
        """The TrainConfig of this recipe <- a TOML file <- flags, with the recipe's settings for the device
        that those choose."""
        from mnistlab.training import build_config

        chosen = merge(read_toml(config_file) if config_file else {}, overrides or {})
        device = chosen.get("device", self.settings.get("device", "auto"))
        return build_config(overrides=chosen, base=self.settings_for(device))

    @property
    def is_record(self) -> bool:
        return bool(self.target)

    def figures(self) -> str:
        """"published: val_accuracy 0.976, ..." or, for a record, "record target: ..."."""
        if self.is_record:
            return "record target: " + ", ".join(f"{k} {v:.4g}" for k, v in self.target.items())
        return "published: " + (", ".join(f"{k} {v:.4g}" for k, v in self.published.items()) or "no published figure")

    def how_to_run(self) -> str:
        if self.ensemble > 1:
            return (f"run it: mnistlab reproduce {self.name}  (trains the {self.ensemble} members and averages them; "
                    f"mnistlab train --recipe {self.name} trains one)")
        return f"run it: mnistlab train --recipe {self.name}"

    def describe(self) -> str:
        """What `mnistlab recipes show` prints: where it comes from, its figures and its settings as TOML."""
        import tomli_w

        lines = [f"{self.name}: {self.title}", f"source: {self.source}", self.figures()]
        if self.ensemble > 1:
            lines.append(f"ensemble: the average of {self.ensemble} models trained with seeds 0-{self.ensemble - 1}")
        if self.path:
            lines.append(f"file: {self.path}  (a copy, edited, is a recipe of your own: --recipe my.toml)")
        tables = {"settings": self.settings, **({"cuda": self.cuda} if self.cuda else {})}
        lines += ["", "# every other setting keeps its default; flags override these"
                  + ("; on a CUDA GPU, those under cuda replace them" if self.cuda else ""),
                  tomli_w.dumps(tables).rstrip(), "", self.how_to_run()]
        return "\n".join(lines)


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load_recipe(name_or_path: str | os.PathLike) -> Recipe:
    path = Path(name_or_path)
    if not path.suffix == ".toml":
        path = RECIPES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise ConfigError(f"unknown recipe {str(name_or_path)!r}; choose one of {', '.join(list_recipes())} "
                              f"or give a recipe .toml file")
    data = read_toml(path)
    unknown = sorted(set(data) - {"recipe", "settings", "cuda"})
    if unknown or "recipe" not in data:
        raise ConfigError(f"{path}: a recipe has a [recipe] table, a [settings] table and optionally [cuda]"
                          + (f"; unknown table {unknown[0]!r}" if unknown else ""))
    meta = data["recipe"]
    extra = sorted(set(meta) - {"title", "source", "published", "ensemble", "target", "train_accuracy_epochs"})
    if extra:
        raise ConfigError(f"{path}: unknown recipe key {extra[0]!r}")
    from mnistlab.training import build_config

    settings, cuda = data.get("settings", {}), data.get("cuda", {})
    build_config(overrides=settings)  # validate now, with the file named in errors
    if cuda:
        build_config(overrides=merge(settings, cuda))
    return Recipe(name=path.stem, title=meta.get("title", path.stem), source=meta.get("source", ""),
                  settings=settings, published=dict(meta.get("published", {})),
                  ensemble=int(meta.get("ensemble", 0)), target=dict(meta.get("target", {})), path=path, cuda=cuda,
                  train_accuracy_epochs=_epoch_range(meta.get("train_accuracy_epochs", []), path))


def _epoch_range(value: Any, path: Path) -> tuple[int, ...]:
    if value == []:
        return ()
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 1 for v in value)
            and value[0] <= value[1]):
        raise ConfigError(f"{path}: train_accuracy_epochs is [FIRST, LAST], two epoch numbers, got {value!r}")
    return tuple(value)


def train_recipe(recipe: Recipe, seed: int = 0, device: str = "auto", overrides: dict[str, Any] | None = None,
                 runs_dir: str | os.PathLike = "runs", name: str | None = None, progress: str = "quiet",
                 callbacks: Sequence[Callback] = ()) -> RunFolder:
    """Train one seed of a recipe on `device` (its [cuda] settings on a GPU), with `overrides` on top, in a new
    run folder `<runs_dir>/<name or RECIPE-s<seed>>-<n>`: what `reproduce` and the benchmarks run."""
    from mnistlab.training import train

    chosen = {**(overrides or {}), "seed": seed, **({"device": device} if device != "auto" else {})}
    return train(recipe.config(overrides=chosen), runs_dir, name or f"{recipe.name}-s{seed}", progress,
                 callbacks=callbacks)
