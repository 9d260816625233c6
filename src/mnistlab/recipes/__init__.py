"""Recipes: named training settings, with the published result they reproduce and where it comes from.

A recipe is a TOML file: a `[recipe]` table (title, source, published figures, optional `ensemble = N`,
and for mnistlab's records a `target`: the test accuracy to reach and the training seconds allowed on
the reference 2-core CPU) and a `[settings]` table of `TrainConfig` keys. The tutorial recipes ship in this
folder; a user's own recipe file is given by its path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.config import read_toml
from mnistlab.errors import ConfigError

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

    @property
    def is_record(self) -> bool:
        return bool(self.target)


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
    unknown = sorted(set(data) - {"recipe", "settings"})
    if unknown or "recipe" not in data:
        raise ConfigError(f"{path}: a recipe has a [recipe] table and a [settings] table"
                          + (f"; unknown table {unknown[0]!r}" if unknown else ""))
    meta = data["recipe"]
    extra = sorted(set(meta) - {"title", "source", "published", "ensemble", "target"})
    if extra:
        raise ConfigError(f"{path}: unknown recipe key {extra[0]!r}")
    from mnistlab.training.pipeline import build_config

    build_config(overrides=data.get("settings", {}))  # validate now, with the file named in errors
    return Recipe(name=path.stem, title=meta.get("title", path.stem), source=meta.get("source", ""),
                  settings=data.get("settings", {}), published=dict(meta.get("published", {})),
                  ensemble=int(meta.get("ensemble", 0)), target=dict(meta.get("target", {})))
