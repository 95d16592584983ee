"""`bridge chat`: one turn or an interactive chat on one thread, streamed to stdout.

Turns run through the chat layer's driver with a terminal `AnswerView`: the answer on
stdout, steps, approvals, sign-ins and failures on stderr in the shared wording. Ctrl-C
stops the running answer (the upstream turn is stopped too) and still prints the
`thread:` line; in an interactive chat a second Ctrl-C, or one at the prompt, exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream

from bridge import errors
from bridge._console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError, note
from bridge.chat import (
    AgentDirectory,
    ApprovalRequest,
    Failure,
    Progress,
    SignInRequest,
    Step,
    drive,
    failure_of,
)
from bridge.client import AgentClient
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.models import User
from bridge.stores import MemoryStore, ThreadRef

__all__ = ["chat", "check_thread", "pick_agent"]

_KEY = ConversationKey("cli", "terminal", "chat")


@dataclass
class _Interrupts:
    """Where Ctrl-C goes: the running answer first, then the whole chat."""

    chat: anyio.CancelScope
    turn: anyio.CancelScope | None = None
    exited: bool = False

    async def watch(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                if self.turn is not None and not self.turn.cancel_called:
                    self.turn.cancel()
                    continue
                self.exited = True
                self.chat.cancel()
                return


async def pick_agent(directory: AgentDirectory, wanted: str | None, emulated: bool) -> str:
    """The agent id for `--agent` (by id or name), else the only agent (`echo` when emulated).

    Raises:
        UsageError: no such agent (naming the close matches), or several and none chosen.
    """
    if wanted is None and emulated:
        wanted = "echo"
    if wanted:
        agent = await directory.find(wanted)
        if agent is not None:
            return agent.id
        close = await directory.close_matches(wanted)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"no agent named {wanted!r}{hint} (`bridge agents` lists them)")
    agents = await directory.agents()
    if len(agents) == 1:
        return agents[0].id
    names_text = ", ".join(agent.name for agent in agents) or "none"
    raise UsageError(f"choose an agent with --agent (agents: {names_text})")


async def check_thread(client: AgentClient, thread: str) -> None:
    """Refuse a `--thread` the platform does not know (a typo would start a new thread).

    Raises:
        UsageError: the platform has no such task.
    """
    try:
        await client.get_task(thread)
    except errors.NotFoundError:
        raise UsageError(
            f"no thread {thread!r} on the platform (use the `thread:` line of an earlier chat)"
        ) from None


@dataclass
class _Chat:
    """One terminal chat: its conversation (an in-memory store keeps the thread) and Ctrl-C."""

    conversations: Conversations
    agent_id: str
    user: User | None
    interrupts: _Interrupts
    key: ConversationKey = _KEY


async def chat(
    client: AgentClient,
    agent_id: str,
    message: str | None,
    thread: str | None,
    user: User | None,
) -> int:
    """One turn when `message` is given, else an interactive chat on one thread."""
    code = EXIT_OK
    async with MemoryStore() as store, anyio.create_task_group() as group:
        interrupts = _Interrupts(chat=group.cancel_scope)
        session = _Chat(Conversations(client, store), agent_id, user, interrupts)
        if thread:
            await store.put_thread(str(session.key), ThreadRef(task_id=thread, agent_id=agent_id))
        group.start_soon(interrupts.watch)
        if message is not None:
            code = await _one_turn(session, message)
        else:
            code = await _interactive(session)
        group.cancel_scope.cancel()
    return EXIT_INTERRUPTED if interrupts.exited else code


async def _interactive(session: _Chat) -> int:
    code = EXIT_OK
    lines = _stdin_lines()
    while True:
        note("you> ")
        line = await lines.receive()
        if not line:
            return code
        if line.strip():
            code = await _one_turn(session, line.strip())


def _stdin_lines() -> MemoryObjectReceiveStream[str]:
    """Lines of stdin, read by a daemon thread (a worker thread blocked in `readline` would
    keep the process from exiting after Ctrl-C); "" at the end of input."""
    send, receive = anyio.create_memory_object_stream[str](1)
    token = anyio.lowlevel.current_token()

    def read() -> None:
        while True:
            line = sys.stdin.readline()
            try:
                anyio.from_thread.run(send.send, line, token=token)
            except RuntimeError:  # the event loop is gone: the chat has ended
                return
            if not line:
                return

    threading.Thread(target=read, name="bridge-chat-stdin", daemon=True).start()
    return receive


async def _one_turn(session: _Chat, text: str) -> int:
    conversations, key = session.conversations, session.key
    view = TerminalView(sys.stdout)
    with anyio.CancelScope() as scope:
        session.interrupts.turn = scope
        try:
            async with conversations.turn(
                key, Message(text, user=session.user), agent_id=session.agent_id, source="api"
            ) as turn:
                await drive(turn, view, conversations)
        except errors.UpstreamError as exc:  # the turn could not begin (checkpoint, store)
            note(f"error: {failure_of(exc).text}")
            view.failed = True
    session.interrupts.turn = None
    code = EXIT_FAILED if view.failed else EXIT_OK
    if scope.cancelled_caught:
        view.out.write("\n")
        view.out.flush()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await conversations.stop(key)
            except errors.UpstreamError as exc:
                note(f"error: could not stop the agent's turn: {exc}")
        note("· stopped")
        code = EXIT_INTERRUPTED
    ref = await conversations.thread_for(key)
    if ref is not None:
        note(f"thread: {ref.task_id}")
    return code


class TerminalView:
    """The chat layer's `AnswerView` on a terminal: the answer streamed to `out`, everything
    else on stderr, one line each."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False
        self._shown = ""

    async def start(self) -> None:
        return None

    async def text(self, delta: str, streamed: str) -> None:
        self._shown = streamed
        self.out.write(delta)
        self.out.flush()

    async def progress(self, step: Step, progress: Progress) -> None:
        note(f"· {step.line}")

    async def approval(self, request: ApprovalRequest) -> None:
        note(f"· {request.text}" + (f"\n  {request.url}" if request.url else ""))

    async def sign_in(self, request: SignInRequest) -> None:
        note(f"· {request.text}")

    async def finish(self, answer: str) -> None:
        self._settle(answer)

    async def fail(self, failure: Failure, streamed: str) -> None:
        self.failed = True
        self._settle(streamed)
        note(f"error: {failure.text}")

    def _settle(self, answer: str) -> None:
        """End the streamed text with the final answer: the rest of it when the stream was
        its beginning, else the whole answer on a line of its own."""
        shown = self._shown
        if answer.startswith(shown):
            self.out.write(answer[len(shown) :])
        elif answer:
            self.out.write(f"\n{answer}")
        if shown or answer:
            self.out.write("\n")
        self.out.flush()
