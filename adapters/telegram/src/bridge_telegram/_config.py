"""`[adapters.telegram]`: the validated configuration of the Telegram adapter."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bridge.adapters import AdapterConfig
from bridge.chat import ChatPolicy
from bridge.config import Required

__all__ = ["ChatRoute", "TelegramConfig"]

DEFAULT_API_URL = "https://api.telegram.org"

GroupConversation = Literal["chat", "thread", "user"]
"""In groups without topics: one conversation per chat, per reply thread, or per user."""


class ChatRoute(BaseModel):
    """`[adapters.telegram.routes."<chat id>"]`: what one chat talks to."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, description="agent name or id for this chat")
    group_conversation: GroupConversation | None = None
    allowed_agents: list[str] | None = Field(
        default=None, description="agents this chat may choose (unset: the adapter's list)"
    )


class TelegramConfig(AdapterConfig, ChatPolicy):
    """Every key of `[adapters.telegram]`; `config.example.toml` documents each one. User
    ids in `allowed_users` and `admins` are Telegram user ids."""

    public: ClassVar[bool] = True

    bot_token: SecretStr
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    secret_token: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    routes: dict[str, ChatRoute] = Field(default_factory=dict)
    group_conversation: GroupConversation = "chat"
    allowed_chat_ids: list[int] | None = None
    allowed_user_ids: list[int] | None = None
    email_template: str = "{user_id}@telegram.invalid"
    use_drafts: bool = True
    draft_cooldown: float = Field(
        default=300.0, ge=0, description="seconds drafts stay off after sendMessageDraft failed"
    )
    typing_interval: float = Field(default=4.5, gt=0)
    poll_timeout: float = Field(default=30.0, ge=0)
    poller_lease: float = Field(default=30.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="webhook bodies")

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> TelegramConfig:
        secret = self.secret_token.get_secret_value() if self.secret_token else ""
        if self.mode == "webhook" and not secret:
            raise Required("secret_token", "mode = 'webhook' needs a secret_token")
        if "{user_id}" not in self.email_template:
            raise Required("email_template", "email_template must contain {user_id}")
        return self

    @property
    def bot_api_root(self) -> str:
        return self.api_url.rstrip("/")

    def route_for(self, chat_id: int) -> ChatRoute:
        return self.routes.get(str(chat_id)) or ChatRoute()

    def allows_agent(self, chat_id: int, agent_id: str, name: str | None = None) -> bool:
        """The chat's route list when it has one, else `allowed_agents` (empty: all allowed)."""
        listed = self.route_for(chat_id).allowed_agents
        lists = self if listed is None else ChatPolicy(allowed_agents=listed)
        return lists.is_allowed_agent(agent_id, name)

    def is_allowed(self, chat_id: int, user_id: str | None) -> bool:
        """On `allowed_chat_ids` and `allowed_user_ids` (the chat flow checks `allowed_users`)."""
        if self.allowed_chat_ids is not None and chat_id not in self.allowed_chat_ids:
            return False
        if self.allowed_user_ids is None:
            return True
        return user_id is not None and int(user_id) in self.allowed_user_ids
