"""Inbound: MCP tool arguments and caller identity turned into what the conversations service needs."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

from bridge.conversations import ConversationKey
from bridge.models import User
from bridge_mcp._config import BearerToken, MCPConfig

__all__ = [
    "AgentArguments",
    "ArgumentsError",
    "Caller",
    "CancelRunArguments",
    "RunArguments",
    "StartRunArguments",
    "TokenTable",
    "caller_for",
    "conversation_key",
    "parse_arguments",
    "principal_digest",
]

A = TypeVar("A", bound=BaseModel)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentArguments(_Arguments):
    message: str = Field(min_length=1)
    conversation: str | None = None
    files: list[str] = Field(default_factory=list)


class StartRunArguments(AgentArguments):
    agent: str = Field(min_length=1)


class CancelRunArguments(_Arguments):
    run: str = Field(min_length=1)


class RunArguments(CancelRunArguments):
    wait: float = Field(default=0.0, ge=0, le=50)


class ArgumentsError(ValueError):
    """Tool arguments that do not fit the tool's input schema."""


def parse_arguments(model: type[A], arguments: dict[str, Any] | None) -> A:
    """Validate tool arguments.

    Raises:
        ArgumentsError: naming the offending fields.
    """
    try:
        return model.model_validate(arguments or {})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ArgumentsError(f"invalid arguments: {problems}") from None


@dataclass(frozen=True)
class Caller:
    """Who is calling, and which MCP session they call from (None: stateless, no session)."""

    principal: str
    user: User
    session: str | None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def principal_digest(principal: str) -> str:
    """A short, stable stand-in for a principal in store keys (which never hold emails)."""
    return _digest(principal).hex()[:24]


class TokenTable:
    """Bearer tokens configured in `[adapters.mcp] tokens`, as an SDK `TokenVerifier`.

    Every configured token is compared, in constant time, so that the time taken
    tells nothing about which bytes of a guess were right."""

    def __init__(self, tokens: list[BearerToken]) -> None:
        self._tokens = [
            (_digest(entry.token.get_secret_value()), entry.principal) for entry in tokens
        ]

    async def verify_token(self, token: str) -> AccessToken | None:
        offered = _digest(token)
        principal: str | None = None
        for digest, owner in self._tokens:
            if hmac.compare_digest(digest, offered):
                principal = owner
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal, scopes=[], subject=principal)


def _validated_session(ctx: ServerRequestContext[Any, Any], config: MCPConfig) -> str | None:
    """The request's session id, only where the transport checked it: the stateful
    handshake-era path, where the SDK admits a session id only for the credential
    that opened it. Stateless mode and 2026-07-28 requests have no validated session."""
    if config.stateless or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    assert ctx.request is not None
    session_id: str | None = ctx.request.headers.get("mcp-session-id")
    return f"http-{session_id}" if session_id else None


def caller_for(
    ctx: ServerRequestContext[Any, Any], config: MCPConfig, stdio_session: str | None
) -> Caller:
    """The caller of this request: the bearer token's principal on HTTP, else the configured user."""
    request = ctx.request
    principal: str | None = None
    session = stdio_session
    if request is not None:
        user = request.scope.get("user")
        if isinstance(user, AuthenticatedUser):
            principal = user.access_token.subject or user.access_token.client_id
        session = _validated_session(ctx, config)
    if principal is None:
        principal = config.user_id or config.user_email or "local"
        email = config.user_email or (principal if "@" in principal else f"{principal}@localhost")
        return Caller(principal, User(email=email, id=config.user_id or principal), session)
    email = principal if "@" in principal else f"{principal}@localhost"
    return Caller(principal, User(email=email, id=principal), session)


def conversation_key(caller: Caller, agent_id: str) -> tuple[ConversationKey, bool]:
    """The key calls continue in: the principal's thread with this agent in a validated
    session, or (no validated session) a key of its own for this call only, so that
    only a handle continues a thread. Returns (key, ephemeral)."""
    if caller.session is not None:
        space = f"{caller.session}.{principal_digest(caller.principal)}"
        return ConversationKey("mcp", space, agent_id), False
    return ConversationKey("mcp", f"call-{uuid.uuid4().hex}", agent_id), True
