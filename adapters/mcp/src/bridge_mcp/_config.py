"""`[adapters.mcp]`: which agents to expose, identity, HTTP exposure and timing of the MCP adapter."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from bridge.adapters import AdapterConfig, BearerToken, tokens_are_values
from bridge.config import Settings
from bridge.errors import ConfigError

__all__ = ["BearerToken", "MCPConfig"]


class MCPConfig(AdapterConfig):
    """The MCP adapter's table. Unknown keys are errors."""

    agents: list[str] = Field(
        default_factory=list, description="agent names or ids to expose; empty exposes every agent"
    )
    refresh_interval: float = Field(
        default=60.0, gt=0, description="seconds between checks of the upstream agent list"
    )
    heartbeat_interval: float = Field(
        default=15.0,
        gt=0,
        description="longest silence of a running call before a progress heartbeat",
    )
    user_email: str | None = Field(
        default=None, description="end user sent upstream (stdio, no token)"
    )
    user_id: str | None = None
    tokens: list[BearerToken] = Field(
        default_factory=list, description="HTTP bearer tokens, each with its principal"
    )
    stateless: bool = Field(
        default=False, description="HTTP without sessions: only handles continue"
    )
    json_response: bool = Field(default=False, description="HTTP answers as JSON rather than SSE")
    path: str = "/mcp"
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="extra Host header values accepted (e.g. 'mcp.example.com')",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="extra Origin header values accepted (e.g. 'https://app.example.com')",
    )
    run_ttl: float = Field(
        default=3600.0, gt=0, description="seconds a finished run stays readable"
    )
    max_runs: int = Field(default=1000, ge=1, description="runs kept in memory at most")
    call_budget: float = Field(
        default=50.0,
        ge=0,
        description="seconds a tool call follows its agent before returning a 'running' result "
        "with the run id (0: follow to the end, for clients that reset their timeout on progress)",
    )
    max_sessions: int = Field(default=1000, ge=1, description="open HTTP sessions at most")
    max_sessions_per_principal: int = Field(
        default=20, ge=1, description="open HTTP sessions per token holder at most"
    )
    session_idle_timeout: float = Field(
        default=600.0, gt=0, description="seconds an idle HTTP session lives"
    )
    cancel_poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="seconds between checks of the store for cancels sent to another replica "
        "(stateless HTTP)",
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_are_values(cls, value: Any) -> Any:
        return tokens_are_values("mcp", value)

    def check_settings(self, settings: Settings) -> None:
        """HTTP reachable beyond loopback (bound elsewhere, a public name in `allowed_hosts`
        or `[http] public_url`) needs bearer tokens.

        Raises:
            ConfigError: naming `adapters.mcp.tokens`.
        """
        from bridge_mcp._http import why_tokens_are_needed

        host = settings.http.host
        reason = why_tokens_are_needed(host, self, settings.http.public_url)
        if reason is not None and not self.tokens:
            raise ConfigError(
                f"the MCP endpoint would be reachable beyond this machine ({reason}) without "
                "authentication; configure bearer tokens or keep it on 127.0.0.1",
                key="adapters.mcp.tokens",
                path=settings.origins.of(("http", "host")),
            )
