"""Configuration: the models, and the only code that reads TOML files and the environment.

Precedence: explicit values (CLI flags) > environment (`BRIDGE_`, `__` nesting;
`XPANDER_API_KEY` for the upstream key) > TOML file > defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.stores import SessionStore

__all__ = [
    "DEFAULT_BASE_URL",
    "ConversationsConfig",
    "HttpConfig",
    "LogConfig",
    "Settings",
    "StoreConfig",
    "UpstreamConfig",
    "find_config_file",
    "load_settings",
    "secret_values",
    "validate_adapter_config",
]

DEFAULT_BASE_URL = "https://api.xpander.ai"

M = TypeVar("M", bound=BaseModel)


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
    embedded_state: str = Field(
        default=".bridge/emulator.json", description="where the embedded emulator keeps its threads"
    )


class HttpConfig(_Section):
    """`[http]`: the one HTTP server adapters mount their routes on."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    public_url: str | None = Field(default=None, description="how the platform reaches /files/")


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
    handle_secret: SecretStr | None = None
    handle_ttl: float = Field(default=30 * 86400.0, gt=0)
    recovery_interval: float = Field(default=30.0, gt=0)
    drain_timeout: float = Field(
        default=30.0, ge=0, description="seconds running turns get on SIGTERM"
    )


class LogConfig(_Section):
    """`[log]`: level and format of the bridge's logs."""

    level: str = "INFO"
    format: Literal["plain", "json"] = "plain"


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
    adapters: dict[str, dict[str, Any]] = Field(default_factory=dict)

    config_path: Path | None = Field(default=None, exclude=True)
    log_level_given: bool = Field(default=False, exclude=True)

    @property
    def has_api_key(self) -> bool:
        key = self.upstream.api_key
        return key is not None and bool(key.get_secret_value())


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


def load_settings(
    config_file: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load the configuration.

    Raises:
        ConfigError: a key is invalid (names the key and the file or variable).
    """
    path = find_config_file(config_file)
    from_file = _read_toml(path) if path else {}
    env = dict(os.environ if environ is None else environ)
    explicit = overrides or {}
    xpander_key = env.get("XPANDER_API_KEY")

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
            lower = from_file
            if xpander_key:
                lower = _deep_merge(from_file, {"upstream": {"api_key": xpander_key}})
            return (
                InitSettingsSource(settings_cls, explicit),
                _EnvSource(settings_cls, env),
                InitSettingsSource(settings_cls, lower),
            )

    try:
        loaded = _Loaded()
    except pydantic.ValidationError as exc:
        raise _config_error(exc, path, env) from None
    settings = Settings.model_construct(
        **{name: getattr(loaded, name) for name in Settings.model_fields}
    )
    settings.config_path = path
    settings.log_level_given = bool(
        explicit.get("log", {}).get("level")
        or env.get("BRIDGE_LOG__LEVEL")
        or (isinstance(from_file.get("log"), dict) and "level" in from_file["log"])
    )
    return settings


class _EnvSource(PydanticBaseSettingsSource):
    """`BRIDGE_A__B=value` from an explicit mapping (so tests need not touch os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], env: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        for name, value in env.items():
            if not name.upper().startswith("BRIDGE_") or name.upper() == "BRIDGE_CONFIG":
                continue
            parts = name[len("BRIDGE_") :].lower().split("__")
            node = self._values
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    break
            else:
                node[parts[-1]] = value

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


def _config_error(
    exc: pydantic.ValidationError, path: Path | None, env: dict[str, str]
) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    env_name = "BRIDGE_" + "__".join(str(part).upper() for part in first["loc"])
    where = f"environment variable {env_name}" if env_name in env else (str(path) if path else None)
    return ConfigError(first["msg"], key=key, path=where)


def validate_adapter_config(settings: Settings, name: str, model: type[M]) -> M:
    """Validate the `[adapters.NAME]` table against the adapter's model.

    Raises:
        ConfigError: naming `adapters.NAME.<key>` and the config file.
    """
    raw = settings.adapters.get(name, {})
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(["adapters", name, *(str(part) for part in first["loc"])])
        where = str(settings.config_path) if settings.config_path else None
        raise ConfigError(first["msg"], key=key, path=where) from None


_SECRET_HINTS = ("token", "secret", "key", "password")


def secret_values(settings: Settings) -> list[str]:
    """Every secret the configuration holds (for log redaction and leak tests)."""
    found: list[str] = []

    def walk(node: Any, name: str = "") -> None:
        if isinstance(node, SecretStr):
            found.append(node.get_secret_value())
        elif isinstance(node, BaseModel):
            for field in type(node).model_fields:
                walk(getattr(node, field), field)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key))
        elif isinstance(node, str) and any(hint in name.lower() for hint in _SECRET_HINTS):
            found.append(node)

    walk(settings)
    return [value for value in found if value]
