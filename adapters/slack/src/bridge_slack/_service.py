"""What the Slack adapter does with a message: the chat policy, routing, files, the turn
(driven by `bridge.chat.drive`), stop / switch / reset, recovery."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from bridge.chat import AgentDirectory, UserGate, drive, failure_of, final_answer, may_control
from bridge.conversations import ConversationKey, Message
from bridge.cooldown import Cooldown
from bridge.errors import PlatformError, UpstreamError
from bridge.files import FileBody, fetch_url
from bridge.models import Agent, Task
from bridge.render import escape_slack_markdown
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn
from bridge_slack._api import SlackApi, SlackCallError
from bridge_slack._config import SlackConfig
from bridge_slack._directory import UserDirectory
from bridge_slack._inbound import Inbound, from_command, key_for
from bridge_slack._outbound import SlackAnswer, SlackPlace, note

__all__ = ["SlackService"]

logger = logging.getLogger(__name__)

SOURCE = "slack"
BUSY = "I'm still answering the previous message here; yours is next."
DROPPED = (
    "Too many messages are already waiting in this conversation; yours was not sent. "
    "Send it again once the answer is done."
)
TOO_FAST = "You are sending messages faster than I can answer; try again shortly."
NOT_YOURS = "Only the person who asked, or an admin, can {what} this conversation."


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed bracketed address
        return ""


def _escape(text: str) -> str:
    """User text the bot echoes: shown as typed, pinging nobody."""
    return escape_slack_markdown(text, at_line_start=False)


class SlackService:
    """Answers Slack messages with agents; shared by the HTTP and Socket Mode front ends."""

    def __init__(self, config: SlackConfig, runtime: Runtime, api: SlackApi) -> None:
        self.config = config
        self.runtime = runtime
        self.conversations = runtime.conversations
        self.api = api
        self.users = UserDirectory(api)
        self.agents = AgentDirectory(runtime.client)
        self.gate = UserGate(
            config.user_rate_limit, config.user_rate_window, store=runtime.store, scope="slack"
        )
        #: Workspaces whose streams failed to start are set aside, then tried again.
        self.no_streaming = Cooldown(config.stream_cooldown)

    def key(self, inbound: Inbound) -> ConversationKey:
        return key_for(
            self.config, inbound.team, inbound.channel, inbound.thread_ts, is_dm=inbound.is_dm
        )

    async def notify(self, place: SlackPlace, text: str) -> None:
        """A private note to the sender (ephemeral), in the thread."""
        try:
            await note(self.api, self.runtime.scheduler, place, text)
        except PlatformError as exc:
            logger.warning("could not tell %s: %s", place.user, exc)

    def _allowed(self, inbound: Inbound) -> bool:
        allowed = self.config.allows_place(
            inbound.channel, is_dm=inbound.is_dm
        ) and self.config.is_allowed_user(inbound.user)
        if not allowed:
            logger.info("ignoring %s in %s: not on the allow-lists", inbound.user, inbound.channel)
        return allowed

    async def _admit(self, inbound: Inbound) -> bool:
        """The allow-lists, then the sender's token bucket: before anything is done."""
        if not self._allowed(inbound):
            return False
        if await self.gate.admit(inbound.principal):
            return True
        if await self.gate.tell(inbound.principal):  # once per window, not per flooded message
            await self.notify(inbound.place, TOO_FAST)
        return False

    async def handle(self, inbound: Inbound) -> None:
        """Run everything one accepted message asks for; renders every failure to the user."""
        key = self.key(inbound)
        if inbound.trigger == "thread" and (
            not self.config.follow_threads or await self.conversations.thread_for(key) is None
        ):
            return
        word = inbound.text.strip().lower()
        if word in self.config.stop_words or word in self.config.reset_words:
            if self._allowed(inbound):
                await self._control(inbound, key, stop=word in self.config.stop_words)
            return
        if not await self._admit(inbound):
            return
        agent_id = await self._route(inbound, key)
        if agent_id is not None:
            await self._answer(inbound, key, agent_id)

    async def command(self, body: dict[str, Any]) -> None:
        """A slash command: checked like a message, then its question is re-posted (escaped)
        as the thread root and answered there like a mention."""
        asked = from_command(body, "")
        if not await self._admit(asked):
            return
        agent = await self._agent(asked, asked.agent_name) if asked.agent_name else None
        if asked.agent_name and agent is None:
            return
        text = _escape(str(body.get("text") or "").strip())
        try:
            root = await self.runtime.scheduler.submit(
                f"slack:{asked.channel}:commands",
                lambda: self.api.post_once(
                    f"command:{body.get('trigger_id')}",
                    channel=asked.channel,
                    text=f"<@{asked.user}> asked: {text}",
                ),
                buckets=[f"slack:{asked.channel}:post"],
            )
        except PlatformError as exc:
            logger.warning("could not post the command's question in %s: %s", asked.channel, exc)
            return
        if root is None:
            return
        inbound = replace(asked, ts=root, thread_ts=root)
        key = self.key(inbound)
        if agent is not None:
            await self.conversations.choose_agent(key, agent.id, owner=inbound.principal)
        agent_id = agent.id if agent is not None else await self._route(inbound, key)
        if agent_id is not None:
            await self._answer(inbound, key, agent_id)

    # -- who may act on a conversation --------------------------------------------------

    async def may_control(self, team: str, user: str, requester: str | None) -> bool:
        """The requester themself, a configured admin, or a workspace admin or owner."""
        actor = f"{team}:{user}"
        if actor == requester:
            return True
        admin = user in self.config.admins or actor in self.config.admins
        admin = admin or await self.users.is_admin(team, user)
        return may_control(actor, requester, [actor] if admin else [])

    async def _control(self, inbound: Inbound, key: ConversationKey, *, stop: bool) -> None:
        """`stop` or `reset` in a conversation, by its requester or an admin only."""
        requester = await self.conversations.requester(key)
        if not await self.may_control(inbound.team, inbound.user, requester):
            await self.notify(inbound.place, NOT_YOURS.format(what="stop" if stop else "reset"))
        elif stop:
            await self.stop(key, inbound)
        else:
            await self.conversations.reset(key)
            await self.notify(
                inbound.place, "Done: your next message here starts a new conversation."
            )

    async def stop(self, key: ConversationKey, inbound: Inbound | None = None) -> None:
        try:
            stopped = await self.conversations.stop(key)
        except UpstreamError as exc:
            logger.warning("could not stop %s: %s", key, exc)
            stopped = None
        if stopped is None and inbound is not None:
            await self.notify(inbound.place, "Nothing is running in this thread.")

    async def stop_session(self, team: str, channel: str, thread_ts: str, user: str) -> None:
        """Slack's own stop (`agent_session_stopped`), by the requester or an admin."""
        key = key_for(self.config, team, channel, thread_ts, is_dm=channel.startswith("D"))
        if await self.may_control(team, user, await self.conversations.requester(key)):
            await self.stop(key)

    async def stop_button(self, team: str, channel: str, user: str, turn_id: str) -> None:
        """A Stop click: the value names a turn; the store says whose turn it is and where it
        runs, so a click from another team, channel or user stops nothing."""
        record = await self.runtime.store.get_turn(turn_id) if turn_id else None
        if record is None or record.adapter != SOURCE:
            return
        key = ConversationKey.parse(record.key)
        try:
            requester = SlackPlace.model_validate(record.reply).principal
        except ValidationError:
            requester = None
        if key.space != f"{team}:{channel}" or not await self.may_control(team, user, requester):
            logger.warning("refused a Stop click by %s in %s:%s", user, team, channel)
            place = SlackPlace(team=team, channel=channel, thread_ts="", user=user)
            await self.notify(place, NOT_YOURS.format(what="stop"))
            return
        await self.stop(key)

    # -- agents -------------------------------------------------------------------------

    async def _agent(self, inbound: Inbound, name: str) -> Agent | None:
        """The agent of that name or id if this channel may use it; else tells which may."""
        try:
            agent = await self.agents.find(name)
            allowed = [
                a
                for a in await self.agents.agents()
                if self.config.allows_agent(a.id, a.name, inbound.channel)
            ]
        except UpstreamError as exc:
            logger.warning("could not list agents: %s", exc)
            await self.notify(inbound.place, failure_of(exc).text)
            return None
        if agent is not None and agent.id in {a.id for a in allowed}:
            return agent
        names = ", ".join(f"`{a.name}`" for a in allowed) or "none"
        text = f"There is no agent named `{_escape(name)}` here. Agents: {names}."
        await self.notify(inbound.place, text)
        return None

    async def _route(self, inbound: Inbound, key: ConversationKey) -> str | None:
        """Explicit choice > the thread's agent > the channel's agent > the default agent.
        Switching the agent of a running or owned conversation is its requester's (or an
        admin's) call."""
        current = await self.conversations.agent_for(key)
        if inbound.agent_name:
            chosen = await self._agent(inbound, inbound.agent_name)
            if chosen is None or chosen.id == current:
                return chosen.id if chosen else None
            requester = await self.conversations.requester(key)
            if current and not await self.may_control(inbound.team, inbound.user, requester):
                await self.notify(inbound.place, NOT_YOURS.format(what="switch the agent of"))
                return None
            await self.conversations.choose_agent(key, chosen.id, owner=inbound.principal)
            return chosen.id
        if current:
            return current
        name = self.config.channel(inbound.channel).agent or self.config.default_agent
        if not name:
            await self.notify(
                inbound.place, "No agent is configured here; name one with `agent:NAME`."
            )
            return None
        agent = await self._agent(inbound, name)
        return agent.id if agent else None

    async def _files(self, inbound: Inbound) -> tuple[str, ...]:
        """Sealed bridge URLs for shared files, streamed from Slack when fetched; Slack's URL
        and the token stay here. Files over the cap or off Slack's file hosts are refused."""
        urls = []
        for shared in inbound.files:
            name = str(shared.get("name") or "file")
            url = str(shared.get("url_private_download") or shared.get("url_private") or "")
            refused = None
            if not url or int(shared.get("size") or 0) > self.config.max_file_bytes:
                refused = "is too large or not readable"
            elif _host(url) not in {h.lower() for h in self.config.file_hosts}:
                logger.warning("file %s of %s is not on a Slack file host", name, inbound.ts)
                refused = "could not be read"
            if refused:
                await self.notify(
                    inbound.place, f"`{_escape(name)}` {refused}; it was not passed on."
                )
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

    # -- the turn -----------------------------------------------------------------------

    async def _answer(self, inbound: Inbound, key: ConversationKey, agent_id: str) -> None:
        place = inbound.place
        message = Message(
            text=inbound.text,
            user=await self.users.user(inbound.team, inbound.user),
            principal=inbound.principal,
            files=await self._files(inbound),
            reply=place.model_dump(exclude_none=True),
        )
        # No await between this check and `turn()` taking its place in the queue.
        waiting = self.conversations.waiting(key)
        if waiting >= self.config.max_queued and (waiting or self.conversations.running_task(key)):
            await self.notify(inbound.place, DROPPED)
            return

        async def queued() -> None:
            await self.notify(inbound.place, BUSY)

        async with self.conversations.turn(
            key, message, agent_id=agent_id, source=SOURCE, on_queued=queued
        ) as turn:
            if turn.merged:
                return

            async def record(reply: SlackPlace) -> None:
                await turn.set_reply(**reply.model_dump(exclude_none=True))

            view = SlackAnswer(
                self.api,
                self.runtime.scheduler,
                place,
                turn_id=turn.record.turn_id,
                streaming=self.config.streaming and not self.no_streaming.is_paused(inbound.team),
                stop_value=turn.record.turn_id,
                max_parts=self.config.max_message_parts,
                mentions=self.config.allow_mentions,
                record=record,
                on_unsupported=lambda: self.no_streaming.pause(inbound.team),
            )
            await drive(turn, view, self.conversations)

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Recovery: finish a turn whose process died; editing the recorded message is idempotent."""
        try:
            place = SlackPlace.model_validate(record.reply)
        except ValidationError:
            logger.warning("turn %s has no recorded reply; cannot deliver", record.turn_id)
            return
        if place.ts is None:  # posted, perhaps, but not recorded: found by its tag
            try:
                found = await self.api.find_tagged(
                    place.channel, place.thread_ts, f"{record.turn_id}:0"
                )
            except SlackCallError as exc:
                logger.info("no placeholder of %s looked up: %s", record.turn_id, exc.error)
                found = None
            place = place.model_copy(update={"ts": found, "mode": "update" if found else None})
        reply = SlackAnswer(
            self.api,
            self.runtime.scheduler,
            place,
            turn_id=record.turn_id,
            streaming=False,
            max_parts=self.config.max_message_parts,
            mentions=self.config.allow_mentions,
        )
        if place.mode == "stream":
            await reply.stop_stream_quietly()
        if error is None:
            await reply.finish(final_answer(task, ""))
        else:
            await reply.fail(failure_of(error), "")
