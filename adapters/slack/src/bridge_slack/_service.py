"""What Slack adds to the chat flow (`bridge.chat.ChatService`): notes as ephemerals,
workspace admins, per-channel agents, the slash command, Slack's stop controls, shared
files fetched with the bot token, and the answer view."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from bridge.chat import AnswerView, ChatService, ChatWording, Incoming
from bridge.conversations import Turn
from bridge.cooldown import Cooldown
from bridge.errors import PlatformError
from bridge.files import FileBody, fetch_url
from bridge.models import Agent, User
from bridge.render import escape_slack_markdown
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn
from bridge_slack._api import SlackApi, SlackCallError
from bridge_slack._config import SlackConfig
from bridge_slack._directory import UserDirectory
from bridge_slack._inbound import key_for, read_command
from bridge_slack._outbound import SlackAnswer, SlackPlace, note

__all__ = ["SlackService"]


class SlackService(ChatService[SlackPlace, SlackConfig]):
    """Answers Slack messages with agents; shared by the HTTP and Socket Mode front ends."""

    source = "slack"
    place_model = SlackPlace
    wording = ChatWording(
        dropped=(
            "Too many messages are already waiting in this conversation; yours was not sent. "
            "Send it again once the answer is done."
        ),
        no_agent="There is no agent named `{name}` here. Agents: {agents}.",
        agent_name="`{name}`",
    )

    def __init__(self, config: SlackConfig, runtime: Runtime, api: SlackApi) -> None:
        super().__init__(config, runtime)
        self.api = api
        self.users = UserDirectory(api)
        #: Workspaces whose streams failed to start are set aside, then tried again.
        self.no_streaming = Cooldown(config.stream_cooldown)

    async def command(self, body: dict[str, Any]) -> None:
        """A slash command: checked like a message, then its question is re-posted (escaped)
        as the thread root and answered there like a mention."""
        asked = read_command(body, self.config, "")
        if not await self.admit(asked):
            return
        if asked.agent and await self.find_agent(asked, asked.agent) is None:
            return
        text, channel = self.quote(str(body.get("text") or "").strip()), asked.place.channel
        try:
            root = await self.runtime.scheduler.submit(
                f"slack:{channel}:commands",
                lambda: self.api.post_once(
                    f"command:{body.get('trigger_id')}",
                    channel=channel,
                    text=f"<@{asked.user_id}> asked: {text}",
                ),
                buckets=[f"slack:{channel}:post"],
            )
        except PlatformError as exc:
            self.logger.warning("could not post the command's question in %s: %s", channel, exc)
            return
        if root is not None:
            await self.answer(read_command(body, self.config, root))

    # -- Slack's stop controls ----------------------------------------------------------

    def _actor(
        self, team: str, channel: str, user: str, thread_ts: str = ""
    ) -> Incoming[SlackPlace]:
        is_dm = channel.startswith("D")
        place = SlackPlace(team=team, channel=channel, thread_ts=thread_ts, user=user, is_dm=is_dm)
        return Incoming(place, key_for(self.config, place), user_id=user, principal=place.principal)

    async def stop_session(self, team: str, channel: str, thread_ts: str, user: str) -> None:
        """Slack's own stop (`agent_session_stopped`), by the requester or an admin."""
        actor = self._actor(team, channel, user, thread_ts)
        if await self.may_control(actor):
            await self.stop(actor)

    async def stop_button(self, team: str, channel: str, user: str, turn_id: str) -> None:
        """A Stop click: its value names a turn; one from another team or channel, or by
        someone who may not stop it, stops nothing."""
        await self.stop_turn(self._actor(team, channel, user), turn_id)

    # -- the chat flow's platform side --------------------------------------------------

    async def notify(self, place: SlackPlace, text: str, *, plain: bool = False) -> None:
        """A private note to the sender (ephemeral), in the thread; user text in it is
        already escaped (`quote`)."""
        await note(self.api, self.runtime.scheduler, place, text)

    def quote(self, text: str) -> str:
        """User text the bot echoes: shown as typed, pinging nobody."""
        return escape_slack_markdown(text, at_line_start=False)

    def allows(self, incoming: Incoming[SlackPlace]) -> bool:
        return self.config.allows_place(incoming.place.channel, is_dm=incoming.place.is_dm)

    async def is_admin(self, incoming: Incoming[SlackPlace]) -> bool:
        """A workspace admin or owner (users.info)."""
        return await self.users.is_admin(incoming.place.team, incoming.place.user)

    def allows_agent(self, agent: Agent, place: SlackPlace) -> bool:
        return self.config.allows_agent(agent.id, agent.name, place.channel)

    def default_agent(self, place: SlackPlace) -> str | None:
        return self.config.channel(place.channel).agent or self.config.default_agent

    async def user_of(self, incoming: Incoming[SlackPlace]) -> User | None:
        return await self.users.user(incoming.place.team, incoming.place.user)

    def fetch_file(self, url: str, limit: int) -> AbstractAsyncContextManager[FileBody]:
        """A shared file from Slack's file hosts, with the bot token (`FileHost` source)."""
        return fetch_url(
            url,
            hosts=self.config.file_hosts,
            limit=limit,
            headers={"Authorization": f"Bearer {self.api.web.token}"},
            allow_private=self.config.allow_private_file_hosts,
        )

    def answer_view(self, incoming: Incoming[SlackPlace], turn: Turn) -> AnswerView:
        team, turn_id = incoming.place.team, turn.record.turn_id
        return self._view(
            incoming.place,
            turn_id,
            streaming=self.config.streaming and not self.no_streaming.is_paused(team),
            stop_value=turn_id,
            record=turn.set_reply,
            on_unsupported=lambda: self.no_streaming.pause(team),
        )

    async def recovered_view(self, record: InFlightTurn) -> AnswerView | None:
        """The recorded message, edited in place (idempotent); an open stream is closed."""
        if (place := self.recorded_place(record)) is None:
            return None
        if place.ts is None:  # posted, perhaps, but not recorded: found by its tag
            try:
                found = await self.api.find_tagged(
                    place.channel, place.thread_ts, f"{record.turn_id}:0"
                )
            except SlackCallError as exc:
                self.logger.info("no placeholder of %s looked up: %s", record.turn_id, exc.error)
                found = None
            place = place.model_copy(update={"ts": found, "mode": "update" if found else None})
        view = self._view(place, record.turn_id, streaming=False)
        if place.mode == "stream":
            await view.stop_stream_quietly()
        return view

    def _view(self, place: SlackPlace, turn_id: str, **options: Any) -> SlackAnswer:
        return SlackAnswer(
            self.api,
            self.runtime.scheduler,
            place,
            turn_id=turn_id,
            max_parts=self.config.max_message_parts,
            mentions=self.config.allow_mentions,
            **options,
        )
