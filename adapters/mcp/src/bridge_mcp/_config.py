"""`[adapters.mcp]`: which agents to expose, identity, HTTP exposure and timing of the MCP adapter."""

from __future__ import annotations

from pydantic import Field, SecretStr

from bridge.adapters import AdapterConfig

__all__ = ["MCPConfig"]


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
    tokens: dict[SecretStr, str] = Field(
        default_factory=dict, description="HTTP bearer token -> principal (e.g. the user's email)"
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
