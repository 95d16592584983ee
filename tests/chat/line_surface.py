"""A fourth chat surface built only on the bridge's public API: a line chat over TCP.

One line in is one message, `USER TEXT`, in one shared room; the answer streams back to
the user's connection as lines `KIND TEXT` (`text`, `step`, `approval`, `signin`, `answer`,
`failed`, `refused`, `queued`, `hello`), newlines in TEXT written as `\\n`. `USER /stop`
stops the room's running turn; `USER /hello` only says who is on the line.
"""

from __future__ import annotations

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
    PlatformError,
    Runtime,
    Task,
    Turn,
    UpstreamError,
)
from bridge.chat import (
    AnswerView,
    ApprovalRequest,
    ChatPolicy,
    ChatService,
    ChatWording,
    Failure,
    Incoming,
    Progress,
    SignInRequest,
    Step,
)

__all__ = ["LineAdapter", "LineConfig"]

ROOM = ConversationKey("line", "local", "room")
MAX_LINE = 16_384
#: Each note the chat flow tells a user is one line; its wording starts with its kind.
WORDING = ChatWording(
    not_allowed="refused you may not talk to agents here",
    too_fast="refused too many messages; wait a moment",
    dropped="refused too many messages are waiting",
    queued="queued",
    not_yours="refused only who asked (or an admin) may {action} it",
    no_agent="refused no agent {name!r} (agents: {agents})",
    nothing_to_stop="refused nothing to stop",
)


class LineConfig(AdapterConfig, ChatPolicy):
    """`[adapters.line]`: the agent the room talks to, and the chat policy keys."""

    agent: str = "echo"


class LinePlace(BaseModel):
    """Where an answer goes: the user's line (recorded with the turn for recovery)."""

    user: str


class Outlet:
    """One client connection, lines written whole, one at a time; and the
    `bridge.chat.AnswerView` of the answers it gets: every call becomes a line."""

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

    async def start(self) -> None:
        await self.send("started")

    async def text(self, delta: str, streamed: str) -> None:
        await self.send("text", delta)

    async def progress(self, step: Step, progress: Progress) -> None:
        await self.send("step", step.line)

    async def approval(self, request: ApprovalRequest) -> None:
        await self.send("approval", request.text)

    async def sign_in(self, request: SignInRequest) -> None:
        await self.send("signin", request.url)

    async def finish(self, answer: str) -> None:
        await self.send("answer", answer)

    async def fail(self, failure: Failure, streamed: str) -> None:
        await self.send("failed", failure.text)


class LineService(ChatService[LinePlace, LineConfig]):
    """The line chat's side of the chat flow: its outlets, notes, and the room's agent."""

    source = "api"
    wording = WORDING

    def __init__(self, config: LineConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.outlets: dict[str, Outlet] = {}

    def outlet(self, place: LinePlace) -> Outlet:
        """Raises PlatformError: the user is not connected (recovery tries again later)."""
        if (outlet := self.outlets.get(place.user)) is None:
            raise PlatformError(f"{place.user} is not connected", platform="line")
        return outlet

    async def notify(self, place: LinePlace, text: str, *, plain: bool = False) -> None:
        """A line of the kind its wording starts with; the core's failure notes are `failed`."""
        kind, _, rest = text.partition(" ")
        if kind not in ("refused", "queued"):
            kind, rest = "failed", text
        await self.outlet(place).send(kind, rest)

    def default_agent(self, place: LinePlace) -> str:
        return self.config.agent

    def answer_view(self, incoming: Incoming[LinePlace], turn: Turn) -> AnswerView:
        return self.outlet(incoming.place)

    async def recovered_view(self, record: InFlightTurn) -> AnswerView:
        return self.outlet(record.reply_as(LinePlace))


class LineAdapter:
    """Serves the line chat on 127.0.0.1:<free port> (`port` once started)."""

    name: ClassVar[str] = "line"
    config_model: ClassVar[type[AdapterConfig]] = LineConfig

    def __init__(self, config: LineConfig) -> None:
        self.config = config
        self.port = 0
        self.service: LineService | None = None

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self.service = LineService(self.config, runtime)
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.port = listener.extra(SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        assert self.service is not None
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
                if not user:
                    continue
                self.service.outlets[user] = outlet
                if text.strip() == "/hello":
                    await outlet.send("hello", user)
                    continue
                place, stop = LinePlace(user=user), text.strip() == "/stop"
                message = Incoming(place, ROOM, user, user, text, command="stop" if stop else None)
                group.start_soon(self.service.guarded, self.service.receive, message)

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Recovery: the answer of a turn whose bridge died, to its user once connected."""
        assert self.service is not None
        await self.service.deliver(record, task, error)
