"""Configuration: the models, and the only code that reads TOML files and the environment.

Precedence: explicit values (CLI flags) > environment (`BRIDGE_`, `__` nesting;
`XPANDER_API_KEY` for the upstream key) > TOML file > defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge._env import CONVENTIONAL, field_names_at, read_environment
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.stores import SessionStore

__all__ = [
    "DEFAULT_BASE_URL",
    "ConversationsConfig",
    "FilesConfig",
    "HttpConfig",
    "LogConfig",
    "Origins",
    "Required",
    "Settings",
    "StoreConfig",
    "UpstreamConfig",
    "find_config_file",
    "load_settings",
    "redact_url",
    "secret_values",
    "validate_adapter_config",
]

DEFAULT_BASE_URL = "https://api.xpander.ai"

M = TypeVar("M", bound=BaseModel)


class Required(ValueError):
    """Raised by a model validator: `key` (relative to the model) must be set or changed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamConfig(_Section):
    """`[upstream]`: where the platform is and how patient to be with it."""

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    organization_id: str | None = None
    version: str | None = Field(
        default=None, description="agent version to run (number or 'draft')"
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0, description="non-streaming requests")
    idle_timeout: float = Field(default=120.0, gt=0, description="stream silence before polling")
    max_event_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_response_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="largest accepted non-streamed body"
    )
    max_attempts: int = Field(default=4, ge=1, description="tries for refused or unsent requests")
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    poll_interval: float = Field(default=1.0, gt=0)
    poll_interval_max: float = Field(default=10.0, gt=0)
    poll_timeout: float = Field(default=3600.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    keepalive_expiry: float = Field(
        default=4.0, ge=0, description="close idle pooled connections sooner than servers do"
    )
    new_thread_ids: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="choose new threads' ids so a failed invoke can be checked: auto learns "
        "whether the platform keeps them, on trusts it, off lets the platform choose",
    )
    embedded_state: str = Field(
        default=".bridge/emulator.json", description="where the embedded emulator keeps its threads"
    )
    allow_emulator: bool = Field(
        default=False,
        description="let Slack and Telegram answer from the embedded emulator (development only)",
    )


class HttpConfig(_Section):
    """`[http]`: the one HTTP server adapters mount their routes on."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    public_url: str | None = Field(default=None, description="how the platform reaches /files/")
    ops_token: SecretStr | None = Field(
        default=None, description="bearer token /metrics and /readyz then require"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="request body cap of routes without their own"
    )
    body_timeout: float = Field(default=30.0, gt=0, description="seconds to receive a body")
    header_timeout: float = Field(default=10.0, gt=0, description="seconds to send a request head")
    keep_alive_timeout: float = Field(default=5.0, gt=0, description="idle keep-alive seconds")
    shutdown_timeout: float = Field(
        default=5.0, ge=0, description="seconds open requests get to finish at shutdown"
    )
    max_connections: int = Field(default=1000, ge=1, description="open connections at most")
    log_interval: float = Field(
        default=60.0, gt=0, description="one listener error line per kind per interval"
    )


class FilesConfig(_Section):
    """`[files]`: files re-hosted at `/files/…` (sealed references, streamed on request)."""

    ttl: float = Field(default=900.0, gt=0, description="seconds a re-hosted file URL works")
    max_streams: int = Field(default=32, ge=1, description="files streamed at once, in total")
    max_streams_per_user: int = Field(default=4, ge=1, description="per user who shared them")
    stream_timeout: float = Field(
        default=600.0, gt=0, description="seconds one file may take to stream (else cut off)"
    )


class StoreConfig(_Section):
    """`[store]`: `sqlite:///path`, `redis://host:port/db`, `postgresql://…` or `memory://`,
    and how long its rows live."""

    url: str = "sqlite:///.bridge/state.db"
    thread_retention: float = Field(
        default=90 * 86400.0, gt=0, description="seconds a key keeps its thread after its last turn"
    )
    answer_retention: float = Field(
        default=7 * 86400.0, gt=0, description="seconds a delivered answer is remembered"
    )

    def open(self) -> SessionStore:
        """The store `url` names, with these retentions; call `await store.open()`.

        Raises `ConfigError` (key `store.url`) for an unknown scheme or a missing path."""
        from bridge.stores import open_store  # the drivers load only when a store is wanted

        return open_store(
            self.url, thread_retention=self.thread_retention, claim_ttl=self.answer_retention
        )


class ConversationsConfig(_Section):
    """`[conversations]`: turn policy, dedupe, handles, recovery."""

    policy: Literal["queue", "coalesce", "interrupt"] = "queue"
    lock_lease: float = Field(default=30.0, gt=0)
    dedupe_ttl: float = Field(default=86400.0, gt=0)
    handle_secret: SecretStr | None = Field(
        default=None, description="seals conversation handles; default: created once in the store"
    )
    previous_handle_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="secrets handles were sealed with before a rotation, still accepted for a while",
    )
    handle_rotation_grace: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="seconds previous handle secrets stay accepted after a new one is first used",
    )
    handle_ttl: float = Field(default=30 * 86400.0, gt=0)
    recovery_interval: float = Field(default=30.0, gt=0)
    max_delivery_attempts: int = Field(
        default=3, ge=1, description="failed deliveries before a turn is quarantined"
    )
    drain_timeout: float = Field(
        default=30.0, ge=0, description="seconds running turns get on SIGTERM"
    )
    replica_file: str = Field(
        default=".bridge/replica-id",
        description="this process's identity across restarts (persistent stores); '' = none",
    )


class LogConfig(_Section):
    """`[log]`: level and format of the bridge's logs."""

    level: str = "INFO"
    format: Literal["plain", "json"] = "plain"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in _LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(_LEVELS)}")
        return value.upper()


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """The whole configuration. Adapter tables stay raw here and are validated by each
    adapter's own model (`validate_adapter_config`)."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    conversations: ConversationsConfig = Field(default_factory=ConversationsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    adapters: dict[str, dict[str, Any]] = Field(default_factory=dict)

    config_path: Path | None = Field(default=None, exclude=True)
    origins: Origins = Field(default_factory=lambda: Origins(), exclude=True)
    log_level_given: bool = Field(default=False, exclude=True)

    @property
    def has_api_key(self) -> bool:
        key = self.upstream.api_key
        return key is not None and bool(key.get_secret_value())

    @property
    def uses_embedded_emulator(self) -> bool:
        """No key and no platform URL of one's own: the in-process emulator answers. A
        `base_url` without a key talks to that URL, never to the emulator."""
        return not self.has_api_key and self.upstream.base_url == DEFAULT_BASE_URL


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    """`--config PATH`, else `$BRIDGE_CONFIG`, else `./bridge.toml` when present."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("BRIDGE_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path("bridge.toml")
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only with a config file

    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError("config file not found", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _adapter_model(name: str) -> type[BaseModel] | None:
    """The config model of the installed adapter `name` (None when there is none)."""
    from importlib.metadata import entry_points

    for point in entry_points(group="bridge.adapters"):
        if point.name == name:
            model: type[BaseModel] = point.load().config_model
            return model
    return None


def load_settings(
    config_file: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    flags: dict[tuple[str, ...], str] | None = None,
) -> Settings:
    """Load the configuration. `flags` names the command-line flag of each override.

    Raises:
        ConfigError: a key is invalid (names the key and the file, variable or flag).
    """
    path = find_config_file(config_file)
    from_file = _read_toml(path) if path else {}
    env = dict(os.environ if environ is None else environ)
    explicit = overrides or {}
    tables = from_file.get("adapters")
    configured = set(tables) if isinstance(tables, dict) else set()
    layer = read_environment(env, Settings, _adapter_model, configured)
    lower = _deep_merge(from_file, layer.conventional)

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                InitSettingsSource(settings_cls, explicit),
                InitSettingsSource(settings_cls, layer.bridge),
                InitSettingsSource(settings_cls, lower),
            )

    origins = Origins(file=path, env=layer.origins, flags=dict(flags or {}))
    try:
        loaded = _Loaded()
    except pydantic.ValidationError as exc:
        raise _config_error(exc, origins, Settings, ()) from None
    settings = Settings.model_construct(
        **{name: getattr(loaded, name) for name in Settings.model_fields}
    )
    settings.config_path = path
    settings.origins = origins
    settings.log_level_given = bool(
        explicit.get("log", {}).get("level")
        or ("log", "level") in layer.origins
        or (isinstance(from_file.get("log"), dict) and "level" in from_file["log"])
    )
    return settings


@dataclass
class Origins:
    """Where each value came from: the file, a variable or a flag (for error messages)."""

    file: Path | None = None
    env: dict[tuple[str, ...], str] = dataclass_field(default_factory=dict)
    flags: dict[tuple[str, ...], str] = dataclass_field(default_factory=dict)

    def of(self, loc: tuple[str, ...]) -> str | None:
        """The flag, variable or file that set the key at `loc` (or its enclosing table)."""
        for size in range(len(loc), 0, -1):
            prefix = loc[:size]
            if prefix in self.flags:
                return f"flag {self.flags[prefix]}"
            if prefix in self.env:
                return f"environment variable {self.env[prefix]}"
        return str(self.file) if self.file else None


def _config_error(
    exc: pydantic.ValidationError,
    origins: Origins,
    model: type[BaseModel],
    prefix: tuple[str, ...],
) -> ConfigError:
    """The first error as one line: the problem, the key, where it came from, and for an
    unknown key the closest valid one."""
    first = exc.errors()[0]
    loc = prefix + tuple(str(part) for part in first["loc"])
    message = first["msg"]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, Required):
        loc += tuple(cause.key.split("."))
    if first["type"] == "extra_forbidden":
        valid = field_names_at(model, loc[len(prefix) : -1], _adapter_model)
        import difflib  # only for an error

        close = difflib.get_close_matches(loc[-1].lower(), valid, n=1, cutoff=0.6)
        message = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    elif first["type"] == "missing":
        conventional = [name for name, path in CONVENTIONAL.items() if path == loc]
        message = "required, not set" + (f" (or set {conventional[0]})" if conventional else "")
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return ConfigError(message, key=".".join(loc), path=origins.of(loc))


def validate_adapter_config(
    settings: Settings, name: str, model: type[M], *, requirements: bool = True
) -> M:
    """Validate the `[adapters.NAME]` table against the adapter's model. `requirements=False`
    skips what only running needs (tokens), for commands that come before them (a manifest).

    Raises:
        ConfigError: naming `adapters.NAME.<key>` and the file or variable.
    """
    raw = settings.adapters.get(name, {})
    try:
        return model.model_validate(raw, context={"requirements": requirements})
    except pydantic.ValidationError as exc:
        raise _config_error(exc, settings.origins, model, ("adapters", name)) from None


def redact_url(url: str) -> str:
    """`scheme://user:password@host/…` with the password (or a lone token) masked."""
    parts = urlsplit(url)
    if not parts.password and not parts.username:
        return url
    user = parts.username or ""
    hidden = f"{user}:{_MASK}" if parts.password else _MASK
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    if parts.username and not parts.password:
        found.append(parts.username)  # `redis://token@host`: a lone user part is a credential
    return [unquote(value) for value in found] + found


_MASK = "********"
_SECRET_HINTS = ("token", "secret", "key", "password")


def secret_values(settings: Settings) -> list[str]:
    """Every secret the configuration holds (for log redaction and leak tests)."""
    found: list[str] = []

    def walk(node: Any, name: str = "") -> None:
        if isinstance(node, SecretStr):
            found.append(node.get_secret_value())
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item, name)
        elif isinstance(node, BaseModel):
            for field in type(node).model_fields:
                walk(getattr(node, field), field)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key))
        elif isinstance(node, str) and any(hint in name.lower() for hint in _SECRET_HINTS):
            found.append(node)

    walk(settings)
    found += _url_secrets(settings.store.url) + _url_secrets(settings.upstream.base_url)
    return [value for value in found if value]
