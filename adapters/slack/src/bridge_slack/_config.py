"""`[adapters.slack]`: the Slack adapter's validated configuration."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, model_validator

from bridge.adapters import AdapterConfig
from bridge.chat import ChatPolicy
from bridge.config import Required

__all__ = ["SlackChannel", "SlackConfig"]


class SlackChannel(BaseModel):
    """`[adapters.slack.channels.C…]`: one channel's agent and the agents it may choose."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, description="the channel's agent (name or id)")
    allowed_agents: list[str] = Field(
        default_factory=list, description="agents this channel may choose (empty: all allowed)"
    )


class SlackConfig(AdapterConfig, ChatPolicy):
    """Every key of `[adapters.slack]`; see `config.example.toml` in this package's folder.
    The chat policy keys (`allowed_users`, `admins`, `default_agent`, `allowed_agents`,
    `user_rate_limit`, `user_rate_window`, `max_queued`, `max_file_bytes`, `policy`,
    `admin_cache_seconds`) come from `ChatPolicy`."""

    public: ClassVar[bool] = True

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    mode: Literal["socket", "http"] = "http"
    api_url: str = "https://slack.com/api/"
    app_name: str = "Agent Bridge"
    channels: dict[str, str | SlackChannel] = Field(
        default_factory=dict, description="channel id -> agent, or a table with allowed_agents"
    )
    slash_command: str = "/agent"
    follow_threads: bool = True
    dm_conversation: Literal["thread", "dm"] = "thread"
    streaming: bool = True
    stream_cooldown: float = Field(
        default=300.0, ge=0, description="seconds streams stay off after chat.startStream failed"
    )
    allowed_channels: list[str] = Field(default_factory=list)
    max_message_parts: int = Field(default=4, ge=1, description="more parts go into a file")
    stop_words: list[str] = Field(default_factory=lambda: ["stop", "cancel"])
    reset_words: list[str] = Field(
        default_factory=lambda: ["reset"], description="messages that start the thread afresh"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="/slack/events bodies")
    file_hosts: list[str] = Field(
        default_factory=lambda: ["files.slack.com"],
        description="the only hosts the bot token is sent to for shared files",
    )
    allow_private_file_hosts: bool = Field(
        default=False, description="allow http and private/loopback addresses (local fakes only)"
    )
    allow_mentions: list[Literal["users", "user_groups", "here", "channel", "everyone"]] = Field(
        default_factory=list, description="mentions agent output may make; none by default"
    )

    @model_validator(mode="after")
    def _tokens_for_the_mode(self, info: ValidationInfo) -> SlackConfig:
        if not self.enabled or not (info.context or {}).get("requirements", True):
            return self
        if not _given(self.bot_token):
            raise Required("bot_token", "the Slack adapter needs a bot token (SLACK_BOT_TOKEN)")
        if self.mode == "http" and not _given(self.signing_secret):
            raise Required(
                "signing_secret",
                "mode = 'http' needs the signing secret (SLACK_SIGNING_SECRET); "
                "or mode = 'socket' with app_token",
            )
        if self.mode == "socket" and not _given(self.app_token):
            raise Required(
                "app_token", "mode = 'socket' needs an app-level token (SLACK_APP_TOKEN, xapp-…)"
            )
        return self

    def channel(self, channel: str) -> SlackChannel:
        """The channel's own settings (a plain string names just its agent)."""
        found = self.channels.get(channel)
        return SlackChannel(agent=found) if isinstance(found, str) else found or SlackChannel()

    def allows_agent(self, agent_id: str, name: str, channel: str) -> bool:
        """On the adapter's and the channel's agent allow-lists (an empty list allows all)."""
        here = ChatPolicy(allowed_agents=self.channel(channel).allowed_agents)
        return self.is_allowed_agent(agent_id, name) and here.is_allowed_agent(agent_id, name)

    def allows_place(self, channel: str, *, is_dm: bool) -> bool:
        """On `allowed_channels` (DMs are governed by `allowed_users` alone)."""
        return is_dm or not self.allowed_channels or channel in self.allowed_channels

    @property
    def api_base(self) -> str:
        """`api_url` with the trailing slash slack_sdk needs."""
        return self.api_url if self.api_url.endswith("/") else self.api_url + "/"


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())
