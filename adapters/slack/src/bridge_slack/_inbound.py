"""Slack payloads → the chat flow's `Incoming` messages: which events the bot answers, their
conversation keys, agent choices and shared files. Pure functions of the payloads (and the
config); no I/O."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from bridge.chat import Attachment, Command, Incoming
from bridge.conversations import ConversationKey
from bridge_slack._config import SlackConfig
from bridge_slack._outbound import SlackPlace

__all__ = ["key_for", "read_command", "read_event", "split_agent_choice"]

logger = logging.getLogger(__name__)

_ACCEPTED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_CHOICE = re.compile(r"^\s*agent:(?P<name>[\w.\-]+)\s*", re.IGNORECASE)
_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(\|[^>]*)?>")


def key_for(config: SlackConfig, place: SlackPlace) -> ConversationKey:
    """team + channel + root thread ts; one key per DM when `dm_conversation = "dm"`."""
    thread = "dm" if place.is_dm and config.dm_conversation == "dm" else place.thread_ts
    return ConversationKey("slack", f"{place.team}:{place.channel}", thread)


def split_agent_choice(text: str) -> tuple[str | None, str]:
    """`agent:NAME rest` → (NAME, rest); otherwise (None, text)."""
    found = _CHOICE.match(text)
    if found is None:
        return None, text
    return found.group("name"), text[found.end() :]


def read_event(
    body: dict[str, Any], config: SlackConfig, bot_user_id: str
) -> Incoming[SlackPlace] | None:
    """A message or app_mention event the bot answers (a DM, a mention, or with
    `follow_threads` a plain reply in a thread, as a follow-up); None for the rest. Both
    events about one message, and their retries, carry the same delivery id."""
    event = body.get("event") or {}
    if event.get("type") not in ("message", "app_mention"):
        return None
    if event.get("subtype") not in _ACCEPTED_SUBTYPES or event.get("bot_id"):
        return None
    user = event.get("user")
    if not user or user == bot_user_id or event.get("bot_profile"):
        return None
    channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
    text = str(event.get("text") or "")
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    addressed = is_dm or event.get("type") == "app_mention" or f"<@{bot_user_id}" in text
    thread_ts = str(event.get("thread_ts") or ts)
    if not addressed and (thread_ts == ts or not config.follow_threads):
        return None
    team = str(body.get("team_id") or event.get("team") or "")
    place = SlackPlace(team=team, channel=channel, thread_ts=thread_ts, user=str(user), is_dm=is_dm)
    text = _MENTION.sub(lambda m: "" if m.group("user") == bot_user_id else m.group(0), text)
    return _incoming(
        config,
        place,
        text,
        event.get("files") or (),
        delivery=f"slack:msg:{team}:{channel}:{ts}",
        follow_up=not addressed,
    )


def read_command(body: dict[str, Any], config: SlackConfig, root: str) -> Incoming[SlackPlace]:
    """A slash command whose question the bot re-posted at `root`, the thread its answer goes
    in ("" before it is posted); its trigger id is its delivery id."""
    channel, user = str(body.get("channel_id") or ""), str(body.get("user_id") or "")
    team, is_dm = str(body.get("team_id") or ""), channel.startswith("D")
    place = SlackPlace(team=team, channel=channel, thread_ts=root, user=user, is_dm=is_dm)
    trigger = str(body.get("trigger_id") or "")
    delivery = f"slack:command:{trigger}" if trigger else None
    return _incoming(config, place, str(body.get("text") or ""), delivery=delivery)


def _incoming(
    config: SlackConfig,
    place: SlackPlace,
    text: str,
    files: Any = (),
    *,
    delivery: str | None = None,
    follow_up: bool = False,
) -> Incoming[SlackPlace]:
    """An `agent:NAME` prefix chooses the agent, a stop or reset word is a command, and shared
    files off the configured file hosts are refused before the token could go there."""
    agent, text = split_agent_choice(text.strip())
    text = text.strip()
    word = text.lower()
    command: Command | None = None
    if word in config.stop_words or word in config.reset_words:
        command = "stop" if word in config.stop_words else "reset"
    return Incoming(
        place,
        key_for(config, place),
        user_id=place.user,
        principal=place.principal,
        text=text,
        files=tuple(_attachment(shared, config, place.channel) for shared in files),
        command=command,
        agent=agent,
        private=place.is_dm,
        delivery=delivery,
        follow_up=follow_up,
    )


def _attachment(shared: dict[str, Any], config: SlackConfig, channel: str) -> Attachment:
    name = str(shared.get("name") or "file")
    url = str(shared.get("url_private_download") or shared.get("url_private") or "")
    trusted = _host(url) in {host.lower() for host in config.file_hosts}
    if url and not trusted:
        logger.warning("file %s shared in %s is not on a Slack file host", name, channel)
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
