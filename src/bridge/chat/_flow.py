"""The chat flow above a turn, written once for every chat surface: allow-lists, redelivery,
the per-user bucket, control commands, the agent choice, the queue bound, file re-hosting,
the turn itself and its recovery. A surface subclasses `ChatService` for its platform's side."""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from bridge.chat._commands import ChatCommands
from bridge.chat._driver import AnswerView, drive
from bridge.chat._incoming import Incoming, PlaceT
from bridge.chat._policy import ConfigT, UserGate
from bridge.chat._wording import failure_of, final_answer
from bridge.conversations import Message, Turn
from bridge.errors import PlatformError, UpstreamError
from bridge.models import Task, User
from bridge.stores import InFlightTurn

if TYPE_CHECKING:
    from bridge.runtime import Runtime

__all__ = ["ChatService"]


class ChatService(ChatCommands[PlaceT, ConfigT]):
    """Everything a chat surface does with a message once it has read it (`Incoming`).

    A surface implements `notify`, `answer_view` and `recovered_view`, and overrides what
    its platform adds: `allows` (place allow-lists), `is_admin`, `allows_agent` and
    `default_agent` (per-place agents), `user_of`, `quote`, `answering`, and sets `wording`
    and `place_model`. Logs go to the logger of the module that defines the surface's class.
    """

    source: ClassVar[str]
    """The turns' `source` upstream, and the name of the surface's file source."""
    place_model: type[PlaceT]
    """The surface's place model, as its turns record it (`recorded_place`)."""

    def __init__(self, config: ConfigT, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._gate = UserGate(
            config.user_rate_limit,
            config.user_rate_window,
            store=runtime.store,
            scope=self.source,
        )
        self._active: Counter[str] = Counter()

    # -- what the surface supplies ---------------------------------------------------

    @abstractmethod
    def answer_view(self, incoming: Incoming[PlaceT], turn: Turn) -> AnswerView:
        """The view that shows this turn's answer in `incoming.place`."""

    @abstractmethod
    async def recovered_view(self, record: InFlightTurn) -> AnswerView | None:
        """The view that finishes a recorded turn in the place it recorded (None: it
        recorded none, there is nothing to finish)."""

    def recorded_place(self, record: InFlightTurn) -> PlaceT | None:
        """The place a turn recorded (`place_model`); None when it holds none of this
        surface's places."""
        try:
            return record.reply_as(self.place_model)
        except ValidationError:
            return None

    def allows(self, incoming: Incoming[PlaceT]) -> bool:
        """The surface's own allow-lists (channels, chats), checked with `allowed_users`."""
        return True

    async def user_of(self, incoming: Incoming[PlaceT]) -> User | None:
        """The sender as the agent platform sees them, looked up once the message is admitted."""
        return incoming.user

    def answering(self, incoming: Incoming[PlaceT]) -> AbstractAsyncContextManager[object]:
        """What runs while the message waits for and runs its turn (a typing indicator)."""
        return nullcontext()

    # -- the flow --------------------------------------------------------------------

    async def receive(self, incoming: Incoming[PlaceT]) -> None:
        """Act on one message: a control command, or a turn of its conversation; a follow-up
        only in a conversation the bot already has."""
        if incoming.follow_up and await self.conversations.thread_for(incoming.key) is None:
            return
        if not await self.admit(incoming):
            return
        if incoming.command is not None:
            await self.control(incoming)
        else:
            await self.answer(incoming)

    async def admit(self, incoming: Incoming[PlaceT]) -> bool:
        """The allow-lists, redelivery, then the sender's bucket: before anything is posted,
        downloaded or sent upstream. A sender over the limit is told once per window."""
        config = self.config
        if not (self.allows(incoming) and config.is_allowed_user(incoming.user_id)):
            self.logger.info(
                "ignoring %s in %s: not on the allow-lists", incoming.user_id, incoming.key.space
            )
            if self.wording.not_allowed is not None:
                await self.tell(incoming.place, self.wording.not_allowed)
            return False
        if incoming.delivery and not await self.conversations.first_delivery(incoming.delivery):
            self.logger.info("%s was already handled", incoming.delivery)
            return False
        who = incoming.principal or f"{incoming.key.adapter}:{incoming.key.space}"
        if await self._gate.admit(who):  # on the store: every replica counts together
            return True
        self.logger.info("%s is over the rate limit; message dropped", who)
        if await self._gate.tell(who):
            await self.tell(incoming.place, self.wording.too_fast)
        return False

    async def answer(self, incoming: Incoming[PlaceT]) -> None:
        """Route the message to its agent and run its turn, shown by the surface's view."""
        agent_id = await self.route(incoming)
        if agent_id is None:
            return
        files = await self._files(incoming)
        text = incoming.text or (self.wording.attached if files else "")
        if not text:
            return
        user = await self.user_of(incoming)
        message = Message(
            text=text, user=user, principal=incoming.principal, files=files, reply=incoming.place
        )
        key, name = incoming.key, str(incoming.key)
        # No await between this check and `turn()` taking its place in the queue.
        if self._active[name] and self.conversations.waiting(key) >= self.config.max_queued:
            await self.tell(incoming.place, self.wording.dropped)
            return
        self._active[name] += 1
        try:
            async with (
                self.answering(incoming),
                self.conversations.turn(
                    key,
                    message,
                    agent_id=agent_id,
                    source=self.source,
                    policy=self.config.policy,
                    on_queued=lambda: self.tell(incoming.place, self.wording.queued),
                ) as turn,
            ):
                if not turn.merged:
                    await drive(turn, self.answer_view(incoming, turn), self.conversations)
        except UpstreamError as exc:  # the turn could not start
            self.logger.warning("turn of %s did not start: %s", key, exc)
            await self.tell(incoming.place, failure_of(exc).text)
        finally:
            self._active[name] -= 1
            if not self._active[name]:
                del self._active[name]

    async def _files(self, incoming: Incoming[PlaceT]) -> tuple[str, ...]:
        """Sealed bridge links for the shared files, fetched from the platform only when the
        agent opens them (the platform's link and token stay in the bridge). Files over
        `max_file_bytes`, or that the surface will not fetch, are refused and the user told."""
        limit, links = self.config.max_file_bytes, []
        for file in incoming.files:
            refused = None
            if not file.readable:
                refused = self.wording.unreadable
            elif file.size is not None and file.size > limit:
                refused = self.wording.too_large
            if refused is not None:
                name = self.quote(file.filename)
                await self.tell(incoming.place, refused.format(name=name), plain=True)
                continue
            link = self.runtime.files.publish(
                self.source,
                file.locator,
                filename=file.filename,
                content_type=file.content_type,
                limit=limit,
                owner=incoming.principal or "",
            )
            links.append(link)
        return tuple(links)

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Recovery (`RecoversTurns`): finish a turn whose process died, in its recorded place.

        Raises:
            PlatformError: the platform cannot take it yet; the next pass tries again.
        """
        view = await self.recovered_view(record)
        if view is None:
            self.logger.warning("turn %s recorded no place to answer in", record.turn_id)
        elif error is None:
            await view.finish(final_answer(task, ""))
        else:
            await view.fail(failure_of(error), "")

    async def guarded(self, work: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """The outermost frame of detached work (one message, one click): a failure is
        logged and the surface carries on. A platform that failed mid-answer leaves the turn
        to recovery; anything else is a bug, logged with its traceback."""
        name = getattr(work, "__name__", work)
        try:
            await work(*args)
        except PlatformError as exc:
            self.logger.warning(
                "%s: the platform failed (%s); recovery finishes the turn", name, exc
            )
        except Exception:
            self.logger.exception("%s failed", name)
