"""Configuration from the environment: `BRIDGE_A__B=value` and the conventional variables,
resolved against the config models so keys and values keep their case, and decoded for
the field they set (lists as JSON or comma-separated, tables as JSON)."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from bridge.errors import ConfigError

__all__ = ["CONVENTIONAL", "EnvLayer", "field_names_at", "read_environment"]

#: Conventional variables, below their `BRIDGE_` forms in precedence. The adapter ones
#: apply only when that adapter is configured (a table in the file or a `BRIDGE_` variable).
CONVENTIONAL: dict[str, tuple[str, ...]] = {
    "XPANDER_API_KEY": ("upstream", "api_key"),
    "SLACK_BOT_TOKEN": ("adapters", "slack", "bot_token"),
    "SLACK_APP_TOKEN": ("adapters", "slack", "app_token"),
    "SLACK_SIGNING_SECRET": ("adapters", "slack", "signing_secret"),
    "TELEGRAM_BOT_TOKEN": ("adapters", "telegram", "bot_token"),
}

#: The config model of an adapter by table name (None: not installed).
ModelLookup = Callable[[str], type[BaseModel] | None]


@dataclass
class EnvLayer:
    """Values from the environment, nested like the TOML file, and where each came from."""

    bridge: dict[str, Any] = field(default_factory=dict)
    conventional: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, ...], str] = field(default_factory=dict)


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> `X`."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _resolve(
    root: type[BaseModel], parts: list[str], adapter_model: ModelLookup
) -> tuple[tuple[str, ...], Any]:
    """Map `BRIDGE_` name parts onto a key path; field names match case-insensitively, table
    keys (channel ids, chat ids) keep their case. Returns the path and the field's type."""
    path: list[str] = []
    annotation: Any = root
    for part in parts:
        annotation = _unwrap(annotation)
        if _is_model(annotation):
            fields = annotation.model_fields
            name = next((f for f in fields if f.lower() == part.lower()), part.lower())
            path.append(name)
            annotation = fields[name].annotation if name in fields else None
        elif get_origin(annotation) is dict:
            value_type = get_args(annotation)[1]
            if path == ["adapters"]:  # adapter tables: names are lowercase entry points
                part = part.lower()
                value_type = adapter_model(part) or dict[str, Any]
            path.append(part)
            annotation = value_type
        else:  # beyond what the models describe: keep the name as written
            path.append(part)
            annotation = None
    return tuple(path), _unwrap(annotation)


def decode(value: str, annotation: Any, variable: str) -> Any:
    """A variable's text as the value its field expects: lists as JSON or comma-separated,
    tables as JSON; everything else as text (the model converts it)."""
    origin = get_origin(annotation) or annotation
    text = value.strip()
    if origin in (list, set, tuple, frozenset):
        if text.startswith("["):
            return _json(text, list, variable)
        return [item.strip() for item in text.split(",") if item.strip()]
    if origin is dict or _is_model(annotation):
        return _json(text, dict, variable)
    return value


def _json(text: str, kind: type, variable: str) -> Any:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON ({exc.msg})", path=f"environment variable {variable}"
        ) from None
    if not isinstance(parsed, kind):
        expected = "a JSON array" if kind is list else "a JSON object"
        raise ConfigError(f"expected {expected}", path=f"environment variable {variable}")
    return parsed


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # a table given whole (JSON) and one of its keys: the whole value wins
        node = child
    node[path[-1]] = value


def read_environment(
    env: dict[str, str],
    root: type[BaseModel],
    adapter_model: ModelLookup,
    configured_adapters: set[str],
) -> EnvLayer:
    """Every `BRIDGE_` variable (except `BRIDGE_CONFIG`) and the conventional ones.

    Raises:
        ConfigError: a list or table value is not valid JSON (naming the variable).
    """
    layer = EnvLayer()
    for name, value in sorted(env.items()):
        upper = name.upper()
        if not upper.startswith("BRIDGE_") or upper == "BRIDGE_CONFIG":
            continue
        parts = [part for part in name[len("BRIDGE_") :].split("__") if part]
        if not parts:
            continue
        path, annotation = _resolve(root, parts, adapter_model)
        _put(layer.bridge, path, decode(value, annotation, name))
        layer.origins[path] = name
    adapters = configured_adapters | set(layer.bridge.get("adapters", {}))
    for name, path in CONVENTIONAL.items():
        value = env.get(name, "")
        if not value or (path[0] == "adapters" and path[1] not in adapters):
            continue
        _put(layer.conventional, path, value)
        layer.origins.setdefault(path, name)
    return layer


def field_names_at(
    root: type[BaseModel], loc: tuple[str, ...], adapter_model: ModelLookup
) -> list[str]:
    """The valid keys of the table at `loc` (for "did you mean")."""
    _, annotation = _resolve(root, list(loc), adapter_model)
    if not _is_model(annotation):
        return []
    return [name for name, info in annotation.model_fields.items() if not info.exclude]
