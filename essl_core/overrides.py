"""`--set key=value`: typed overrides of a keyword dataclass (a CIFAR or a photonics recipe)."""

from __future__ import annotations

import dataclasses
import typing

from .errors import EsslError

FIXED = ("name", "tier", "overrides")  # what a recipe says about itself; not settable


def _parse(value: str, annotation: str):
    """Convert a string to the field's type (annotations are strings under `from __future__ import annotations`)."""
    if annotation.endswith("| None") and value.lower() in ("none", "null", "all"):
        return None
    base = annotation.split("|")[0].strip()
    if base == "bool":
        if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(value)
        return value.lower() in ("true", "1", "yes", "on")
    if base.startswith("tuple["):
        item = {"float": float, "int": int}[base[len("tuple[") :].split(",")[0].strip(" ]")]
        return tuple(item(p) for p in value.strip("()").split(",") if p.strip())
    return {"int": int, "float": float, "str": str}[base](value)


def settable_fields(cls: type) -> dict[str, str]:
    """The fields `--set` may change, with their types."""
    return {f.name: str(f.type) for f in dataclasses.fields(cls) if f.name not in FIXED}


def parse_overrides(pairs: typing.Iterable[str], cls: type) -> dict:
    """Parse `key=value` strings against the fields of dataclass `cls`; unknown keys and bad values are
    EsslErrors."""
    fields = settable_fields(cls)
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise EsslError(f"--set expects key=value, got {pair!r}")
        if key not in fields:
            raise EsslError(f"unknown option {key!r}; options: {', '.join(fields)}")
        try:
            out[key] = _parse(value.strip(), fields[key])
        except (ValueError, KeyError):
            raise EsslError(f"bad value for {key}: {value!r} (expected {fields[key]})") from None
    return out


def describe_overrides(overrides: dict) -> tuple[str, ...]:
    """The overrides as sorted `key=value` strings, as records keep them."""
    return tuple(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in sorted(overrides.items()))
