"""The adapter seam: the protocol every platform adapter implements, and its loader.

Adapters are separate distributions registered under the entry-point group
`bridge.adapters`; the entry-point name is the TOML table name and the CLI name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TextIO, runtime_checkable

import anyio
import anyio.abc
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.config import Settings, validate_adapter_config
from bridge.errors import ConfigError, PlatformError

if TYPE_CHECKING:
    from bridge.errors import UpstreamError
    from bridge.models import Task
    from bridge.runtime import Runtime
    from bridge.stores import InFlightTurn

__all__ = [
    "Adapter",
    "AdapterConfig",
    "BearerToken",
    "Check",
    "CommandContext",
    "HasCommands",
    "HasDoctor",
    "RecoversThroughService",
    "RecoversTurns",
    "available_adapters",
    "enabled_adapters",
    "load_adapter_class",
    "preflight",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bridge.adapters"
DEFAULT_ADAPTER = "mcp"


class BearerToken(BaseModel):
    """One HTTP bearer token and the user its calls run as (`[[adapters.NAME.tokens]]`)."""

    model_config = ConfigDict(extra="forbid")

    principal: str = Field(min_length=1, description="the user sent upstream (e.g. an email)")
    token: SecretStr = Field(description="the bearer token; prefer the environment")

    @field_validator("token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("a bearer token must not be empty")
        return value


def tokens_are_values(adapter: str, value: Any) -> Any:
    """Refuse the old `"TOKEN" = "PRINCIPAL"` table of tokens, saying how to migrate."""
    if isinstance(value, dict):
        raise ValueError(
            "tokens are a list of tables now, the token a value: for each old line "
            f'"TOKEN" = "PRINCIPAL" write [[adapters.{adapter}.tokens]] with principal = '
            '"PRINCIPAL" and token = "TOKEN" (environment: a JSON list of '
            '{"principal": …, "token": …})'
        )
    return value


class AdapterConfig(BaseModel):
    """Base of every adapter's config model: unknown keys are errors. What an adapter needs
    of its own table is checked by the model's validators; what it needs of the rest of the
    configuration by `check_settings`. `bridge check-config`, `doctor` and `serve` all run
    both (`preflight`)."""

    model_config = ConfigDict(extra="forbid")

    #: Reachable by anyone on the platform (a chat bot): never run on the embedded emulator
    #: unless `upstream.allow_emulator` says so.
    public: ClassVar[bool] = False

    enabled: bool = True

    def check_settings(self, settings: Settings) -> None:
        """Requirements on the rest of the configuration.

        Raises:
            ConfigError: naming the key to set.
        """


@dataclass(frozen=True)
class Check:
    """One line of `bridge doctor`'s report (see `HasDoctor`)."""

    name: str
    ok: bool
    detail: str


@dataclass
class CommandContext:
    """What an adapter's CLI sub-command gets: settings, a runtime factory, an output stream."""

    settings: Settings
    open_runtime: Callable[[], Any]
    out: TextIO
    err: TextIO
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """A platform adapter. `serve` runs until cancelled, and calls `task_status.started()`
    once it accepts work. It must render platform and upstream errors to the user
    rather than raise them; only a fatal setup problem may end it with an exception."""

    name: ClassVar[str]
    config_model: ClassVar[type[AdapterConfig]]

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None: ...


@runtime_checkable
class RecoversTurns(Protocol):
    """An adapter whose turns outlive a crash. Once the adapter has started, the runtime
    runs the recovery of its orphaned turns (`Conversations.run_recovery`) and calls
    `deliver` for each: the turn's final task, or the upstream error that ended it.
    `deliver` must be idempotent; a `PlatformError` leaves the record for the next pass."""

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None: ...


class RecoversThroughService:
    """A base for adapters whose `service`, set while they serve, delivers recovered turns:
    `deliver` (`RecoversTurns`) hands each one to it."""

    name: ClassVar[str]
    service: RecoversTurns | None = None

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Deliver a turn whose process died, through the service.

        Raises:
            PlatformError: not serving yet (the record stays for the next pass), or what
                the service's `deliver` raised.
        """
        if self.service is None:
            raise PlatformError(f"the {self.name} adapter is not serving yet", platform=self.name)
        await self.service.deliver(record, task, error)


@runtime_checkable
class HasDoctor(Protocol):
    """An adapter with platform checks for `bridge doctor` (a static method of the class)."""

    @staticmethod
    async def doctor(config: Any, settings: Settings) -> list[Check]: ...


@runtime_checkable
class HasCommands(Protocol):
    """An adapter with CLI sub-commands, `bridge NAME ARGS...` (a static method of the
    class); returns the process's exit status."""

    @staticmethod
    async def command(ctx: CommandContext, argv: list[str]) -> int: ...


def available_adapters() -> dict[str, Any]:
    """Entry points of installed adapters, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_adapter_class(name: str, installed: dict[str, Any] | None = None) -> type[Any]:
    """The adapter class registered as `name` (among `installed`, the entry points
    `available_adapters()` returned, when the caller has them already).

    Raises:
        ConfigError: no installed adapter has that name.
    """
    installed = available_adapters() if installed is None else installed
    found = installed.get(name)
    if found is None:
        names = ", ".join(sorted(installed)) or "none"
        raise ConfigError(
            f"no adapter named {name!r} is installed (installed: {names})",
            key=f"adapters.{name}",
        )
    cls: type[Any] = found.load()
    return cls


def build_adapter(settings: Settings, name: str, cls: type[Any] | None = None) -> Adapter:
    """Validate `[adapters.NAME]` against the adapter's model and construct it.

    Raises:
        ConfigError: bad keys (naming the key and the file) or unknown adapter.
    """
    cls = cls or load_adapter_class(name)
    config = validate_adapter_config(settings, name, cls.config_model)
    adapter: Adapter = cls(config)
    return adapter


def enabled_adapters(settings: Settings, only: list[str] | None = None) -> list[Adapter]:
    """Adapters to run: those named in `only`, else those with an `[adapters.NAME]` table,
    else (nothing configured) the MCP adapter when installed, so a new user gets a gateway."""
    names = only if only is not None else list(settings.adapters)
    if not names and only is None and DEFAULT_ADAPTER in available_adapters():
        names = [DEFAULT_ADAPTER]
    adapters = []
    for name in names:
        adapter = build_adapter(settings, name)
        if getattr(adapter, "config", None) is not None and not adapter.config.enabled:  # type: ignore[attr-defined]
            continue
        adapters.append(adapter)
    return adapters


def preflight(settings: Settings, adapters: list[Adapter]) -> None:
    """Everything `bridge serve` would refuse, checked before anything starts (and by
    `bridge check-config` and `bridge doctor`).

    Raises:
        ConfigError: the first problem, naming the key and where it came from.
    """
    from bridge.stores import open_store

    open_store(settings.store.url)  # the scheme and path, without connecting
    for adapter in adapters:
        config = getattr(adapter, "config", None)
        if not isinstance(config, AdapterConfig):
            continue
        config.check_settings(settings)
        if (
            config.public
            and settings.uses_embedded_emulator
            and not settings.upstream.allow_emulator
        ):
            raise ConfigError(
                f"the {adapter.name} adapter would answer everyone from the embedded emulator: "
                "set the platform's API key (XPANDER_API_KEY), or upstream.allow_emulator = true "
                "for development",
                key="upstream.api_key",
                path=settings.origins.of(("upstream", "api_key")),
            )
