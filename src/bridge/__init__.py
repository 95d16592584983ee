"""agent-bridge: the hosted platform's agents on MCP, Slack, Telegram and A2A.

The names below are the public API adapters build on (with the documented submodules
`bridge.chat`, `bridge.events`, `bridge.errors` and `bridge.testing`). They load lazily:
`import bridge` loads no adapter, SDK or server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bridge._version import __version__

if TYPE_CHECKING:
    from bridge.adapters import (
        Adapter,
        AdapterConfig,
        Check,
        CommandContext,
        HasCommands,
        HasDoctor,
        RecoversThroughService,
        RecoversTurns,
    )
    from bridge.client import AgentClient
    from bridge.config import Settings, load_settings
    from bridge.conversations import ConversationKey, Conversations, Message, Turn
    from bridge.errors import BridgeError, PlatformError, RunFailedError, UpstreamError
    from bridge.models import Agent, Task, User
    from bridge.runtime import Runtime, open_runtime, serve
    from bridge.stores import InFlightTurn, PlatformMessage, SessionStore, ThreadRef

_EXPORTS = {
    "Adapter": "bridge.adapters",
    "AdapterConfig": "bridge.adapters",
    "Check": "bridge.adapters",
    "CommandContext": "bridge.adapters",
    "HasCommands": "bridge.adapters",
    "HasDoctor": "bridge.adapters",
    "RecoversThroughService": "bridge.adapters",
    "RecoversTurns": "bridge.adapters",
    "AgentClient": "bridge.client",
    "Settings": "bridge.config",
    "load_settings": "bridge.config",
    "ConversationKey": "bridge.conversations",
    "Conversations": "bridge.conversations",
    "Message": "bridge.conversations",
    "Turn": "bridge.conversations",
    "BridgeError": "bridge.errors",
    "PlatformError": "bridge.errors",
    "RunFailedError": "bridge.errors",
    "UpstreamError": "bridge.errors",
    "Agent": "bridge.models",
    "Task": "bridge.models",
    "User": "bridge.models",
    "Runtime": "bridge.runtime",
    "open_runtime": "bridge.runtime",
    "serve": "bridge.runtime",
    "InFlightTurn": "bridge.stores",
    "SessionStore": "bridge.stores",
    "PlatformMessage": "bridge.stores",
    "ThreadRef": "bridge.stores",
}

__all__ = [
    "Adapter",
    "AdapterConfig",
    "Agent",
    "AgentClient",
    "BridgeError",
    "Check",
    "CommandContext",
    "ConversationKey",
    "Conversations",
    "HasCommands",
    "HasDoctor",
    "InFlightTurn",
    "Message",
    "PlatformError",
    "PlatformMessage",
    "RecoversThroughService",
    "RecoversTurns",
    "RunFailedError",
    "Runtime",
    "SessionStore",
    "Settings",
    "Task",
    "ThreadRef",
    "Turn",
    "UpstreamError",
    "User",
    "__version__",
    "load_settings",
    "open_runtime",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
