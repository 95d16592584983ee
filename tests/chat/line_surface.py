"""A fourth chat surface built only on the bridge's public API: a line chat over TCP.

One line in is one message, `USER TEXT`, in one shared room; the answer streams back to
the user's connection as lines `KIND TEXT` (`text`, `step`, `approval`, `signin`, `answer`,
`failed`, `refused`, `queued`, `stopping`, `hello`), newlines in TEXT written as `\\n`.
`USER /stop` stops the room's running turn; `USER /hello` only says who is on the line.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel

from bridge import (
    AdapterConfig,
    ConversationKey,
    InFlightTurn,
    Message,
    PlatformError,
    Runtime,
    Task,
    UpstreamError,
)
from bridge.chat import (
    AgentDirectory,
    ApprovalRequest,
    ChatPolicy,
    Failure,
    Progress,
    SignInRequest,
    Step,
    UserGate,
    drive,
    failure_of,
    final_answer,
    may_control,
)

__all__ = ["LineAdapter", "LineConfig"]

logger = logging.getLogger(__name__)

ROOM = ConversationKey("line", "local", "room")
MAX_LINE = 16_384


class LineConfig(AdapterConfig, ChatPolicy):
    """`[adapters.line]`: the agent the room talks to, and the chat policy keys."""

    agent: str = "echo"


class LineReply(BaseModel):
    """Where an answer goes: the user's line (recorded with the turn for recovery)."""

    user: str


class Outlet:
    """One client connection; lines written whole, one at a time."""

    def __init__(self, stream: anyio.abc.ByteSendStream) -> None:
        self.stream = stream
        self.lock = anyio.Lock()

    async def send(self, kind: str, text: str = "") -> None:
        """Raises PlatformError: the client is gone (the turn is left to recovery)."""
        line = (f"{kind} {text}" if text else kind).replace("\n", "\\n") + "\n"
        async with self.lock:
            try:
                await self.stream.send(line.encode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise PlatformError(
                    f"the line client went away ({exc!r})", platform="line"
                ) from None


class LineView:
    """`bridge.chat.AnswerView` for one answer: every call becomes a line."""

    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    async def start(self) -> None:
        await self.outlet.send("started")

    async def text(self, delta: str, streamed: str) -> None:
        await self.outlet.send("text", delta)

    async def progress(self, step: Step, progress: Progress) -> None:
        await self.outlet.send("step", step.line)

    async def approval(self, request: ApprovalRequest) -> None:
        await self.outlet.send("approval", request.text)

    async def sign_in(self, request: SignInRequest) -> None:
        await self.outlet.send("signin", request.url)

    async def finish(self, answer: str) -> None:
        await self.outlet.send("answer", answer)

    async def fail(self, failure: Failure, streamed: str) -> None:
        await self.outlet.send("failed", failure.text)


class LineAdapter:
    """Serves the line chat on 127.0.0.1:<free port> (`port` once started)."""

    name: ClassVar[str] = "line"
    config_model: ClassVar[type[AdapterConfig]] = LineConfig

    def __init__(self, config: LineConfig) -> None:
        self.config = config
        self.port = 0
        self.gate = UserGate(config.user_rate_limit, config.user_rate_window)
        self.outlets: dict[str, Outlet] = {}
        self.runtime: Runtime | None = None
        self.directory: AgentDirectory | None = None

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self.runtime, self.directory = runtime, AgentDirectory(runtime.client)
        self.gate = UserGate(
            self.config.user_rate_limit,
            self.config.user_rate_window,
            store=runtime.store,
            scope=self.name,
        )
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.port = listener.extra(SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        outlet, lines = Outlet(stream), BufferedByteReceiveStream(stream)
        async with stream, anyio.create_task_group() as group:
            while True:
                try:
                    raw = await lines.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return
                except anyio.DelimiterNotFound:
                    await outlet.send("refused", "line too long")
                    return
                user, _, text = raw.decode(errors="replace").strip().partition(" ")
                group.start_soon(self._guarded, user, text.strip(), outlet)

    async def _guarded(self, user: str, text: str, outlet: Outlet) -> None:
        try:
            await self._message(user, text, outlet)
        except PlatformError as exc:
            logger.info("could not answer %s: %s", user, exc)
        except UpstreamError as exc:
            await outlet.send("failed", failure_of(exc).text)

    async def _message(self, user: str, text: str, outlet: Outlet) -> None:
        assert self.runtime is not None and self.directory is not None
        config, conversations = self.config, self.runtime.conversations
        if not user or not config.is_allowed_user(user):
            return await outlet.send("refused", "you may not talk to agents here")
        self.outlets[user] = outlet
        if text == "/hello":
            return await outlet.send("hello", user)
        if text == "/stop":
            if not may_control(user, await conversations.requester(ROOM), config.admins):
                return await outlet.send("refused", "only who asked (or an admin) may stop it")
            await outlet.send("stopping")
            await conversations.stop(ROOM)
            return None
        if not await self.gate.admit(user):
            return await outlet.send("refused", "too many messages; wait a moment")
        if conversations.waiting(ROOM) >= config.max_queued:
            return await outlet.send("refused", "too many messages are waiting")
        agent = await self.directory.find(config.agent)
        if agent is None or not config.is_allowed_agent(agent.id, agent.name):
            return await outlet.send("refused", f"no agent {config.agent!r}")
        message = Message(text=text, principal=user, reply=LineReply(user=user))
        async with conversations.turn(
            ROOM, message, agent_id=agent.id, source="api", on_queued=lambda: outlet.send("queued")
        ) as turn:
            await drive(turn, LineView(outlet), conversations)
        return None

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Recovery: the answer of a turn whose bridge died, to its user once connected.

        Raises:
            PlatformError: the user is not connected; the next pass tries again.
        """
        user = record.reply_as(LineReply).user
        outlet = self.outlets.get(user)
        if outlet is None:
            raise PlatformError(f"{user} is not connected", platform="line")
        if error is None:
            await outlet.send("answer", final_answer(task, ""))
        else:
            await outlet.send("failed", failure_of(error).text)
