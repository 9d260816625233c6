"""Typed settings: dataclasses with defaults, read from TOML and overridden by flags.

Unknown keys and wrong types are errors that name the key. The resolved settings are written to each run
folder as TOML, which `--config` reads back to repeat the run.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from mnistlab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_value(text: str) -> Any:
    """A flag value as TOML would read it (10 -> int, 0.1 -> float, true, [128, 64]); else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets: "hidden=[1,2],dropout=0.1" -> ["hidden=[1,2]", "dropout=0.1"]."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[(" and 1 or (ch in "])" and -1 or 0)
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_key_values(items: list[str] | str, what: str) -> dict[str, Any]:
    """["a=1", "b=x"] or "a=1,b=x" -> {"a": 1, "b": "x"}."""
    if isinstance(items, str):
        items = split_top_level(items)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} is not of the form key=value")
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def check_type(name: str, value: Any, hint: Any, what: str = "setting") -> Any:
    """Return `value` converted to `hint` where that is lossless (int -> float, list -> tuple), else raise
    a ConfigError that names the `what` (a setting, a model option) and what it must be."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return check_type(name, value, option, what)
            except ConfigError:
                pass
        raise ConfigError(f"{what} {name!r} must be {_describe(hint)}, got {value!r}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and type(value) is hint:
        return value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) == 1:  # list[int], tuple[int, ...]: check every item
            items = [check_type(f"{name}[{i}]", item, args[0], what) for i, item in enumerate(value)]
            return items if origin is list else tuple(items)
        return list(value) if origin is list else tuple(value)
    if origin is dict and isinstance(value, dict):
        return dict(value)
    raise ConfigError(f"{what} {name!r} must be {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    args = typing.get_args(hint)
    if args and typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        item = [a for a in args if a is not Ellipsis]
        return f"a list ({_describe(item[0])} each)" if len(item) == 1 else "a list"
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "unset"}.get(hint, str(hint))


def from_dict(cls, data: dict[str, Any], prefix: str = ""):
    """Build dataclass `cls` from a (possibly partial) dict; nested dataclasses from nested tables."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown setting '{prefix}{unknown[0]}'; known settings are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if value == "none":  # the table's defaults: `--augment none` turns off a model's or recipe's augmentation
                value = {}
            elif isinstance(value, str):
                value = parse_key_values(value, f"{prefix}{key}")
            if not isinstance(value, dict):
                raise ConfigError(f"setting {prefix}{key!r} must be a table of settings, got {value!r}")
            kwargs[key] = from_dict(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = check_type(prefix + key, value, hint)
    return cls(**kwargs)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update: tables merge key by key, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(obj) -> dict[str, Any]:
    """A settings dataclass as a TOML-ready dict (None values left out; tuples as lists)."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(dataclasses.asdict(obj))


def to_toml(obj) -> str:
    import tomli_w

    return tomli_w.dumps(to_dict(obj))
