"""Slack payloads → what the bridge acts on: triggers, conversation keys, agent choices,
and the chat flow's `Incoming`. Pure functions of the payloads (and the config); no I/O."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bridge.chat import Attachment, Command, Incoming
from bridge.conversations import ConversationKey
from bridge_slack._config import SlackConfig
from bridge_slack._outbound import SlackPlace

__all__ = [
    "Inbound",
    "Trigger",
    "from_command",
    "from_event",
    "incoming",
    "key_for",
    "split_agent_choice",
]

logger = logging.getLogger(__name__)

Trigger = Literal["dm", "mention", "thread", "command"]

_ACCEPTED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_CHOICE = re.compile(r"^\s*agent:(?P<name>[\w.\-]+)\s*", re.IGNORECASE)
_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(\|[^>]*)?>")


@dataclass(frozen=True)
class Inbound:
    """One message the bot may answer."""

    trigger: Trigger
    team: str
    channel: str
    user: str
    text: str
    ts: str
    thread_ts: str
    """Root of the thread the answer goes in."""
    is_dm: bool
    agent_name: str | None = None
    files: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def delivery_id(self) -> str:
        """Same for every event about this message (app_mention and message, retries)."""
        return f"slack:msg:{self.team}:{self.channel}:{self.ts}"


def key_for(
    config: SlackConfig, team: str, channel: str, thread_ts: str, *, is_dm: bool
) -> ConversationKey:
    """team + channel + root thread ts; one key per DM when `dm_conversation = "dm"`."""
    thread = "dm" if is_dm and config.dm_conversation == "dm" else thread_ts
    return ConversationKey("slack", f"{team}:{channel}", thread)


def split_agent_choice(text: str) -> tuple[str | None, str]:
    """`agent:NAME rest` → (NAME, rest); otherwise (None, text)."""
    found = _CHOICE.match(text)
    if found is None:
        return None, text
    return found.group("name"), text[found.end() :]


def _strip_mentions(text: str, bot_user_id: str) -> str:
    return _MENTION.sub(
        lambda m: "" if m.group("user") == bot_user_id else m.group(0), text
    ).strip()


def from_event(body: dict[str, Any], bot_user_id: str, bot_id: str | None) -> Inbound | None:
    """A message or app_mention event the bot may answer; None for everything it ignores.

    A plain thread reply comes back with trigger "thread": the caller answers it
    only when `follow_threads` is on and the bot already answers in that thread.
    """
    event = body.get("event") or {}
    if event.get("type") not in ("message", "app_mention"):
        return None
    if (
        event.get("subtype") not in _ACCEPTED_SUBTYPES
        or event.get("bot_id")
        or event.get("bot_profile")
    ):
        return None
    user = event.get("user")
    if not user or user == bot_user_id or (bot_id and event.get("bot_id") == bot_id):
        return None
    channel = str(event.get("channel") or "")
    text = str(event.get("text") or "")
    ts = str(event.get("ts") or "")
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    mentioned = f"<@{bot_user_id}" in text
    thread_ts = event.get("thread_ts")
    trigger: Trigger
    if is_dm:
        trigger = "dm"
    elif mentioned or event.get("type") == "app_mention":
        trigger = "mention"
    elif thread_ts and thread_ts != ts:
        trigger = "thread"
    else:
        return None
    agent_name, cleaned = split_agent_choice(_strip_mentions(text, bot_user_id))
    team = str(body.get("team_id") or event.get("team") or "")
    return Inbound(
        trigger=trigger,
        team=team,
        channel=channel,
        user=str(user),
        text=cleaned.strip(),
        ts=ts,
        thread_ts=str(thread_ts or ts),
        is_dm=is_dm,
        agent_name=agent_name,
        files=tuple(event.get("files") or ()),
    )


def from_command(body: dict[str, Any], posted_ts: str) -> Inbound:
    """A slash command whose question the bot re-posted at `posted_ts` (the thread root)."""
    agent_name, text = split_agent_choice(str(body.get("text") or ""))
    channel = str(body.get("channel_id") or "")
    return Inbound(
        trigger="command",
        team=str(body.get("team_id") or ""),
        channel=channel,
        user=str(body.get("user_id") or ""),
        text=text.strip(),
        ts=posted_ts,
        thread_ts=posted_ts,
        is_dm=channel.startswith("D"),
        agent_name=agent_name,
    )


def incoming(inbound: Inbound, config: SlackConfig) -> Incoming[SlackPlace]:
    """The chat flow's reading of a message: a stop or reset word is a command; shared files
    off the configured file hosts are refused before the token could go there."""
    word = inbound.text.strip().lower()
    command: Command | None = None
    if word in config.stop_words or word in config.reset_words:
        command = "stop" if word in config.stop_words else "reset"
    team, channel, thread_ts = inbound.team, inbound.channel, inbound.thread_ts
    return Incoming(
        SlackPlace(
            team=team, channel=channel, thread_ts=thread_ts, user=inbound.user, is_dm=inbound.is_dm
        ),
        key_for(config, team, channel, thread_ts, is_dm=inbound.is_dm),
        user_id=inbound.user,
        principal=f"{team}:{inbound.user}",
        text=inbound.text,
        files=tuple(_attachment(shared, config, inbound.ts) for shared in inbound.files),
        command=command,
        agent=inbound.agent_name,
        private=inbound.is_dm,
    )


def _attachment(shared: dict[str, Any], config: SlackConfig, ts: str) -> Attachment:
    name = str(shared.get("name") or "file")
    url = str(shared.get("url_private_download") or shared.get("url_private") or "")
    trusted = _host(url) in {host.lower() for host in config.file_hosts}
    if url and not trusted:
        logger.warning("file %s of %s is not on a Slack file host", name, ts)
    return Attachment(
        url,
        name,
        content_type=str(shared.get("mimetype") or "application/octet-stream"),
        size=int(shared.get("size") or 0),
        readable=trusted,
    )


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed bracketed address
        return ""
