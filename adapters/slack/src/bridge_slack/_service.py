"""What the Slack adapter does with a message: policies, routing, files, the turn, recovery."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

from bridge.chat import NOT_SHOWN_TEXT
from bridge.conversations import ConversationKey, Message
from bridge.cooldown import Cooldown
from bridge.errors import PlatformError, RunFailedError, UpstreamError
from bridge.events import TaskFinished
from bridge.files import FileBody, fetch_url
from bridge.models import Task
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn
from bridge_slack._api import SlackApi
from bridge_slack._config import SlackConfig
from bridge_slack._directory import AgentNames, RateGate, UserDirectory
from bridge_slack._inbound import Inbound, key_for
from bridge_slack._outbound import Reply, Where
from bridge_slack._render import error_text, failure_text, final_text

__all__ = ["SlackService"]

logger = logging.getLogger(__name__)

SOURCE = "slack"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed bracketed address
        return ""


class SlackService:
    """Answers Slack messages with agents; shared by the HTTP and Socket Mode front ends."""

    def __init__(self, config: SlackConfig, runtime: Runtime, api: SlackApi) -> None:
        self.config = config
        self.runtime = runtime
        self.conversations = runtime.conversations
        self.api = api
        self.users = UserDirectory(api)
        self.agents = AgentNames(runtime.client)
        self.gate = RateGate(config.user_rate_limit, config.user_rate_window)
        #: Workspaces whose streams failed to start are set aside, then tried again.
        self.no_streaming = Cooldown(config.stream_cooldown)

    def key(self, inbound: Inbound) -> ConversationKey:
        return key_for(
            self.config, inbound.team, inbound.channel, inbound.thread_ts, is_dm=inbound.is_dm
        )

    def where(self, inbound: Inbound) -> Where:
        return Where(inbound.team, inbound.channel, inbound.thread_ts, inbound.user, inbound.is_dm)

    async def tell(self, inbound: Inbound, text: str) -> None:
        """A private note to the sender (ephemeral), in the thread."""
        try:
            await self.runtime.scheduler.submit(
                f"slack:{inbound.channel}:{inbound.thread_ts}",
                lambda: self.api.call(
                    "chat.postEphemeral",
                    channel=inbound.channel,
                    user=inbound.user,
                    thread_ts=inbound.thread_ts,
                    text=text,
                ),
                buckets=[f"slack:{inbound.team}:chat.postEphemeral"],
            )
        except PlatformError as exc:
            logger.warning("could not tell %s: %s", inbound.user, exc)

    def _allowed(self, inbound: Inbound) -> bool:
        config = self.config
        if (
            config.allowed_channels
            and inbound.channel not in config.allowed_channels
            and not inbound.is_dm
        ):
            return False
        return not config.allowed_users or inbound.user in config.allowed_users

    async def handle(self, inbound: Inbound) -> None:
        """Run everything one accepted message asks for; renders every failure to the user."""
        key = self.key(inbound)
        if inbound.trigger == "thread" and (
            not self.config.follow_threads or await self.conversations.thread_for(key) is None
        ):
            return
        if not self._allowed(inbound):
            logger.info("ignoring %s in %s: not on the allow-lists", inbound.user, inbound.channel)
            return
        if inbound.text.strip().lower() in self.config.stop_words:
            await self.stop(key, inbound)
            return
        if not self.gate.admit(inbound.user):
            await self.tell(
                inbound, "You are sending messages faster than I can answer; try again shortly."
            )
            return
        agent_id = await self._route(inbound, key)
        if agent_id is None:
            return
        message = Message(
            text=inbound.text,
            user=await self.users.user(inbound.team, inbound.user),
            principal=inbound.principal,
            files=await self._files(inbound),
            reply={
                "channel": inbound.channel,
                "thread_ts": inbound.thread_ts,
                "team": inbound.team,
                "user": inbound.user,
                "is_dm": inbound.is_dm,
            },
        )
        await self._turn(inbound, key, agent_id, message)

    async def stop(self, key: ConversationKey, inbound: Inbound | None = None) -> None:
        try:
            stopped = await self.conversations.stop(key)
        except UpstreamError as exc:
            logger.warning("could not stop %s: %s", key, exc)
            stopped = None
        if stopped is None and inbound is not None:
            await self.tell(inbound, "Nothing is running in this thread.")

    async def _route(self, inbound: Inbound, key: ConversationKey) -> str | None:
        """Explicit choice > the thread's agent > the channel's agent > the default agent."""
        if inbound.agent_name:
            chosen = await self.agents.resolve(inbound.agent_name)
            if chosen is None:
                await self.tell(inbound, f"There is no agent named `{inbound.agent_name}`.")
                return None
            if chosen != await self.conversations.agent_for(key):
                await self.conversations.choose_agent(key, chosen, owner=inbound.principal)
            return chosen
        current = await self.conversations.agent_for(key)
        if current:
            return current
        name = self.config.channels.get(inbound.channel) or self.config.default_agent
        resolved = await self.agents.resolve(name) if name else None
        if resolved is None:
            await self.tell(inbound, "No agent is configured here; name one with `agent:NAME`.")
        return resolved

    async def _files(self, inbound: Inbound) -> tuple[str, ...]:
        """Sealed bridge URLs for shared files, streamed from Slack when fetched; Slack's URL
        and the token stay here. Files over the cap or off Slack's file hosts are refused."""
        urls = []
        for shared in inbound.files:
            name = str(shared.get("name") or "file")
            url = str(shared.get("url_private_download") or shared.get("url_private") or "")
            if not url or int(shared.get("size") or 0) > self.config.max_file_bytes:
                await self.tell(
                    inbound, f"`{name}` is too large or not readable; it was not passed on."
                )
                continue
            if _host(url) not in {h.lower() for h in self.config.file_hosts}:
                logger.warning("file %s of %s is not on a Slack file host", name, inbound.ts)
                await self.tell(inbound, f"`{name}` could not be read; it was not passed on.")
                continue
            urls.append(
                self.runtime.files.publish(
                    "slack",
                    url,
                    filename=name,
                    content_type=str(shared.get("mimetype") or "application/octet-stream"),
                    limit=self.config.max_file_bytes,
                    owner=inbound.principal or inbound.user,
                )
            )
        return tuple(urls)

    def fetch_file(self, url: str, limit: int) -> AbstractAsyncContextManager[FileBody]:
        """A shared file from Slack's file hosts, with the bot token (`FileHost` source)."""
        return fetch_url(
            url,
            hosts=self.config.file_hosts,
            limit=limit,
            headers={"Authorization": f"Bearer {self.api.web.token}"},
            allow_private=self.config.allow_private_file_hosts,
        )

    async def _turn(
        self, inbound: Inbound, key: ConversationKey, agent_id: str, message: Message
    ) -> None:
        async def queued() -> None:
            await self.tell(
                inbound, "I'm still answering the previous message here; yours is next."
            )

        async with self.conversations.turn(
            key, message, agent_id=agent_id, source=SOURCE, on_queued=queued
        ) as turn:
            if turn.merged:
                return
            reply = Reply(
                self.api,
                self.runtime.scheduler,
                self.where(inbound),
                turn_id=turn.record.turn_id,
                streaming=self.config.streaming and not self.no_streaming.is_paused(inbound.team),
                stop_value=str(key),
                max_parts=self.config.max_message_parts,
                mentions=self.config.allow_mentions,
                record=turn.set_reply,
                on_unsupported=lambda: self.no_streaming.pause(inbound.team),
            )
            await reply.start()
            task: Task | None = None
            try:
                async for event in turn:
                    await reply.on_event(event)
                    if isinstance(event, TaskFinished):
                        task = event.task
                text = final_text(task or turn.task)
            except RunFailedError as exc:
                text = failure_text(reply.text, exc)
            except UpstreamError as exc:
                logger.warning("turn of %s failed upstream: %s", key, exc)
                text = error_text(reply.text, exc)
            except PlatformError:
                raise
            except Exception as exc:  # a rendering bug ends this turn only, never the process
                await self.conversations.count_failure(turn.record, exc, stage="render")
                text = NOT_SHOWN_TEXT
            try:
                await reply.finish(text)
            except PlatformError:
                raise
            except Exception as exc:
                await self.conversations.count_failure(turn.record, exc, stage="render")
                await reply.finish(NOT_SHOWN_TEXT)

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Recovery: finish a turn whose process died; editing the recorded message is idempotent."""
        where: dict[str, Any] = record.reply
        if not where.get("channel") or not where.get("thread_ts"):
            logger.warning("turn %s has no recorded reply; cannot deliver", record.turn_id)
            return
        reply = Reply(
            self.api,
            self.runtime.scheduler,
            Where(
                str(where.get("team", "")),
                str(where["channel"]),
                str(where["thread_ts"]),
                str(where.get("user", "")),
                bool(where.get("is_dm")),
            ),
            turn_id=record.turn_id,
            streaming=False,
            max_parts=self.config.max_message_parts,
            mentions=self.config.allow_mentions,
        )
        reply.ts = where.get("ts")
        if where.get("mode") == "stream":
            await reply.stop_stream_quietly()
        if isinstance(error, RunFailedError):
            text = failure_text("", error)
        elif error is not None:
            text = error_text("", error)
        else:
            text = final_text(task)
        await reply.finish(text)
