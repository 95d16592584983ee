"""The control commands every chat surface offers (help, list agents, switch agent, stop,
reset), who may use the ones that act on a conversation, and which agent a message goes to.
`ChatCommands` is the base of `ChatService`: it also holds the platform hooks they use."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Generic

from bridge.chat._incoming import Command, Incoming, PlaceT
from bridge.chat._policy import ConfigT, may_control
from bridge.chat._wording import ChatWording, failure_of
from bridge.conversations import ConversationKey
from bridge.errors import PlatformError, UpstreamError
from bridge.models import Agent

if TYPE_CHECKING:
    from bridge.runtime import Runtime

__all__ = ["ChatCommands"]

_ACTIONS: dict[str, str] = {"stop": "stop", "reset": "reset", "agent": "switch the agent of"}
_NAME_CHARS = 64
_CACHED_ADMINS = 10_000


class ChatCommands(ABC, Generic[PlaceT, ConfigT]):
    """Commands and agent choice over the platform hooks `notify`, `is_admin`,
    `allows_agent`, `default_agent` and `quote` (see `ChatService`)."""

    wording: ChatWording = ChatWording()

    def __init__(self, config: ConfigT, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.conversations = runtime.conversations
        self.agents = runtime.agents
        self.logger = logging.getLogger(type(self).__module__)
        self._admins: OrderedDict[tuple[str, str | None], tuple[bool, float]] = OrderedDict()

    @abstractmethod
    async def notify(self, place: PlaceT, text: str, *, plain: bool = False) -> None:
        """Tell the sender something in `place`, in the surface's markup. `plain`: the text
        quotes user text (through `quote`); a surface that cannot quote safely in its markup
        sends such text without markup.

        Raises:
            PlatformError: the platform refused or is down.
        """

    async def is_admin(self, incoming: Incoming[PlaceT]) -> bool:
        """Whether the platform makes the sender an admin of the place (beyond `admins`);
        asked at most once per `admin_cache_seconds` per sender and place.

        Raises:
            PlatformError: the platform could not say (the sender is then no admin).
        """
        return False

    def allows_agent(self, agent: Agent, place: PlaceT) -> bool:
        """Whether `place` may use `agent` (default: `allowed_agents`)."""
        return self.config.is_allowed_agent(agent.id, agent.name)

    def default_agent(self, place: PlaceT) -> str | None:
        """The agent a new conversation in `place` talks to (else the first allowed one)."""
        return self.config.default_agent

    def quote(self, text: str) -> str:
        """User text made safe to show inside a note: shown as typed, pinging nobody."""
        return text

    async def tell(self, place: PlaceT, text: str, *, plain: bool = False) -> None:
        """`notify`, best effort: a note that cannot be sent is logged, never raised."""
        try:
            await self.notify(place, text, plain=plain)
        except PlatformError as exc:
            self.logger.info("could not tell %s: %s", place, exc)

    async def refuse(self, incoming: Incoming[PlaceT], command: Command) -> None:
        """Tell the sender that `command` on this conversation is not theirs to give."""
        action = _ACTIONS.get(command, "act on")
        await self.tell(incoming.place, self.wording.not_yours.format(action=action))

    async def _unlisted(self, incoming: Incoming[PlaceT], exc: UpstreamError) -> None:
        self.logger.warning("could not list the agents: %s", exc)
        await self.tell(incoming.place, failure_of(exc).text)

    # -- commands ----------------------------------------------------------------------

    async def control(self, incoming: Incoming[PlaceT]) -> None:
        """Run `incoming.command`; those that act on the conversation only for `may_control`."""
        command, place = incoming.command, incoming.place
        if command is None:
            return
        try:
            if command == "help":
                await self.tell(place, self.wording.help)
            elif command == "agents":
                await self._list(incoming)
            elif not await self.may_control(incoming):
                await self.refuse(incoming, command)
            elif command == "stop":
                await self.stop(incoming, quiet=False)
            elif command == "reset":
                await self.conversations.reset(incoming.key)
                await self.tell(place, self.wording.reset)
            elif (agent := await self.find_agent(incoming, incoming.args)) is not None:
                await self.conversations.choose_agent(incoming.key, agent.id, incoming.principal)
                await self.tell(place, self.wording.switched.format(name=agent.name))
        except UpstreamError as exc:
            self.logger.warning("%s in %s failed: %s", command, incoming.key, exc)
            await self.tell(place, failure_of(exc).text)

    async def may_control(
        self, incoming: Incoming[PlaceT], *, requester: str | None = None
    ) -> bool:
        """Whether the sender may stop, switch or reset the conversation: always in a
        private chat; else its requester, a configured or platform admin, or anyone while
        the conversation has no one yet. `requester` overrides the conversation's (a Stop
        button knows whose turn it stops)."""
        if incoming.private:
            return True
        key, admins = incoming.key, self.config.admins
        requester = requester or await self.conversations.requester(key)
        if incoming.user_id in admins or may_control(incoming.principal, requester, admins):
            return True
        fresh = requester is None and not self.conversations.waiting(key)
        if fresh and await self.conversations.thread_for(key) is None:
            return True
        return await self._is_admin(incoming)

    async def _is_admin(self, incoming: Incoming[PlaceT]) -> bool:
        who = (incoming.key.space, incoming.principal)
        cached = self._admins.get(who)
        if cached is not None and time.monotonic() - cached[1] < self.config.admin_cache_seconds:
            return cached[0]
        try:
            admin = await self.is_admin(incoming)
        except PlatformError as exc:
            self.logger.info("could not tell whether %s is an admin: %s", incoming.user_id, exc)
            return False
        self._admins[who] = (admin, time.monotonic())
        self._admins.move_to_end(who)
        while len(self._admins) > _CACHED_ADMINS:
            self._admins.popitem(last=False)
        return admin

    async def stop(self, incoming: Incoming[PlaceT], *, quiet: bool = True) -> None:
        """Stop the conversation's running task (a running turn shows "Stopped" itself);
        unless `quiet`, say so when nothing runs."""
        try:
            stopped = await self.conversations.stop(incoming.key)
        except UpstreamError as exc:
            self.logger.warning("could not stop %s: %s", incoming.key, exc)
            if not quiet:
                await self.tell(incoming.place, failure_of(exc).text)
            return
        if stopped is None and not quiet:
            await self.tell(incoming.place, self.wording.nothing_to_stop)

    async def stop_turn(self, actor: Incoming[PlaceT], turn_id: str) -> None:
        """A stop control that names a turn (a button on its answer): it stops the turn's
        conversation only when clicked in the same space (`actor.key.space`) by someone who
        may stop it there; anything else stops nothing."""
        record = await self.runtime.store.get_turn(turn_id) if turn_id else None
        if record is None:
            return
        key = ConversationKey.parse(record.key)
        here = actor.key
        actor = replace(actor, key=key)
        if (key.adapter, key.space) != (here.adapter, here.space) or not await self.may_control(
            actor
        ):
            self.logger.warning("refused a stop of %s by %s in %s", key, actor.user_id, here)
            await self.refuse(actor, "stop")
            return
        await self.stop(actor)

    async def _list(self, incoming: Incoming[PlaceT]) -> None:
        current = await self._current(incoming, quiet=True)
        lines = [
            f"- `{agent.name}`{' (current)' if agent.id == current else ''}"
            + (f": {agent.description}" if agent.description else "")
            for agent in await self.allowed_agents(incoming.place)
        ]
        text = "\n".join(lines) or "(none)"
        await self.tell(incoming.place, f"{self.wording.agents}\n\n{text}")

    # -- which agent -------------------------------------------------------------------

    async def allowed_agents(self, place: PlaceT) -> list[Agent]:
        return [agent for agent in await self.agents.agents() if self.allows_agent(agent, place)]

    async def find_agent(self, incoming: Incoming[PlaceT], name: str) -> Agent | None:
        """The agent of that name or id if the place may use it; else None, and the sender
        is told which agents it may use (or that the agents could not be listed)."""
        try:
            agent = await self.agents.find(name)
            if agent is not None and self.allows_agent(agent, incoming.place):
                return agent
            allowed = await self.allowed_agents(incoming.place)
        except UpstreamError as exc:
            await self._unlisted(incoming, exc)
            return None
        names = ", ".join(self.wording.agent_name.format(name=a.name) for a in allowed)
        shown = self.quote(" ".join(name.split())[:_NAME_CHARS])
        await self.tell(
            incoming.place,
            self.wording.no_agent.format(name=shown, agents=names or "none"),
            plain=True,
        )
        return None

    async def route(self, incoming: Incoming[PlaceT]) -> str | None:
        """The agent the message goes to: the one it names (switching the conversation, if
        the sender may), else the conversation's while the place allows it, else the place's
        default, else the first allowed agent. Tells the sender when there is none."""
        if not incoming.agent:
            try:
                return await self._current(incoming, quiet=False)
            except UpstreamError as exc:
                await self._unlisted(incoming, exc)
                return None
        agent = await self.find_agent(incoming, incoming.agent)
        if agent is None:
            return None
        if agent.id != await self.conversations.agent_for(incoming.key):
            if not await self.may_control(incoming):
                await self.refuse(incoming, "agent")
                return None
            await self.conversations.choose_agent(incoming.key, agent.id, incoming.principal)
        return agent.id

    async def _current(self, incoming: Incoming[PlaceT], *, quiet: bool) -> str | None:
        chosen = await self.conversations.agent_for(incoming.key)
        agent = await self.agents.find(chosen) if chosen else None
        if agent is not None and self.allows_agent(agent, incoming.place):
            return agent.id
        wanted = self.default_agent(incoming.place)
        if wanted is None:
            allowed = await self.allowed_agents(incoming.place)
            if not allowed and not quiet:
                await self.tell(incoming.place, self.wording.no_agents)
            return allowed[0].id if allowed else None
        if quiet:
            agent = await self.agents.find(wanted)
            return agent.id if agent is not None else None
        agent = await self.find_agent(incoming, wanted)
        return agent.id if agent is not None else None
