"""`[adapters.a2a]`: which agents to expose over A2A, who may call them, tasks and webhooks."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from bridge.adapters import AdapterConfig, BearerToken, tokens_are_values

__all__ = ["A2AConfig"]


class A2AConfig(AdapterConfig):
    """The A2A adapter's table. Unknown keys are errors."""

    agents: list[str] = Field(
        default_factory=list, description="agent names or ids to expose; empty exposes every agent"
    )
    refresh_interval: float = Field(
        default=60.0, gt=0, description="seconds between checks of the upstream agent list"
    )
    tokens: list[BearerToken] = Field(
        default_factory=list, description="HTTP bearer tokens, each with its principal"
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_are_values(cls, value: Any) -> Any:
        return tokens_are_values("a2a", value)

    user_email: str | None = Field(
        default=None, description="end user sent upstream when no tokens are configured"
    )
    path: str = Field(default="/a2a", pattern=r"^/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$")
    task_store: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the A2A task tables (default: beside a sqlite store; "
        "required for several replicas on a redis store)",
    )
    push_notifications: bool = Field(default=True, description="offer webhook task updates")
    allow_private_webhooks: bool = Field(
        default=False,
        description="accept webhook URLs on loopback or private networks (tests, one-host setups)",
    )
    push_timeout: float = Field(default=10.0, gt=0, description="seconds per webhook delivery")
    max_file_bytes: int = Field(
        default=512 * 1024, ge=1, description="bytes of one file sent inline in a message"
    )
    user_rate_limit: int = Field(default=30, ge=1, description="messages per user per window")
    user_rate_window: float = Field(default=60.0, gt=0)
    event_poll_interval: float = Field(
        default=0.1, gt=0, description="seconds between reads of other replicas' task events"
    )
    interrupted_timeout: float = Field(
        default=3600.0, gt=0, description="seconds a task waiting for the user stays in memory"
    )
