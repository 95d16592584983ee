"""What a chat surface hands the chat flow: one platform message, read into the flow's terms
(who sent it, where to answer, its conversation, text, files, a control command)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

from bridge.conversations import ConversationKey
from bridge.models import User

__all__ = ["Attachment", "Command", "Incoming", "PlaceT"]

PlaceT = TypeVar("PlaceT", bound=BaseModel)
"""A surface's own model of where an answer goes (a channel and thread, a chat and topic)."""

Command = Literal["help", "agents", "agent", "stop", "reset"]
"""Control commands every chat surface offers in its own syntax (`/stop`, a stop word)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the user shared, as the surface's file source knows it (`FileHost.publish`)."""

    locator: str
    """What the surface's file source fetches: a URL, a file id."""
    filename: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    readable: bool = True
    """False when the surface will not fetch it (no link, a host it does not trust)."""


@dataclass(frozen=True, slots=True)
class Incoming(Generic[PlaceT]):
    """One message addressed to the bot, as every chat surface reads it."""

    place: PlaceT
    """Where the answer and any note to the sender go."""
    key: ConversationKey
    user_id: str | None
    """The sender as `allowed_users` and `admins` name them (a platform user id)."""
    principal: str | None
    """The sender, unique across the platform's workspaces: who owns the conversation."""
    text: str = ""
    user: User | None = None
    """The sender as the agent platform sees them."""
    files: tuple[Attachment, ...] = ()
    command: Command | None = None
    args: str = ""
    """The command's argument (`agent NAME`)."""
    agent: str | None = None
    """An agent the message itself names (`agent:NAME question`)."""
    private: bool = False
    """A one-to-one chat: its user controls its conversation."""
    delivery: str | None = None
    """The platform's delivery id, when the flow (not the surface) drops redeliveries."""
    follow_up: bool = False
    """Not addressed to the bot (a plain reply in a thread): answered only in a conversation
    the bot already has."""
