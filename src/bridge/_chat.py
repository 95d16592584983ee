"""`bridge chat`: one turn or an interactive chat on one thread, streamed to stdout.

Ctrl-C stops the running answer (the upstream turn is stopped too) and still prints the
`thread:` line; in an interactive chat a second Ctrl-C, or one at the prompt, exits.
"""

from __future__ import annotations

import difflib
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
from bridge.client import AgentClient
from bridge.events import (
    AuthEventReceived,
    Event,
    ResumedByPolling,
    TaskFinished,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.models import User

__all__ = ["EXIT_INTERRUPTED", "UsageError", "chat", "note"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class UsageError(errors.BridgeError):
    """A command-line argument names something that does not exist (exit status 2)."""


def note(text: str, *, end: str = "\n") -> None:
    print(text, file=sys.stderr, end=end, flush=True)


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


async def pick_agent(client: AgentClient, wanted: str | None, emulated: bool) -> str:
    """The agent id for `--agent` (by id or name), else the only agent (`echo` when emulated).

    Raises:
        UsageError: no such agent (naming the close matches), or several and none chosen.
    """
    if wanted is None and emulated:
        wanted = "echo"
    if wanted:
        try:
            return (await client.find_agent(wanted)).id
        except errors.NotFoundError:
            names = [agent.name for agent in await client.list_agents()]
            close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"no agent named {wanted!r}{hint} (`bridge agents` lists them)"
            ) from None
    agents = await client.list_agents()
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


async def chat(
    client: AgentClient,
    agent_id: str,
    message: str | None,
    thread: str | None,
    user: User | None,
) -> int:
    """One turn when `message` is given, else an interactive chat on one thread."""
    code = EXIT_OK
    async with anyio.create_task_group() as group:
        interrupts = _Interrupts(chat=group.cancel_scope)
        group.start_soon(interrupts.watch)
        if message is not None:
            code, thread = await _one_turn(client, agent_id, message, thread, user, interrupts)
        else:
            code = await _interactive(client, agent_id, thread, user, interrupts)
        group.cancel_scope.cancel()
    return EXIT_INTERRUPTED if interrupts.exited else code


async def _interactive(
    client: AgentClient,
    agent_id: str,
    thread: str | None,
    user: User | None,
    interrupts: _Interrupts,
) -> int:
    code = EXIT_OK
    lines = _stdin_lines()
    while True:
        note("you> ")
        line = await lines.receive()
        if not line:
            return code
        if line.strip():
            code, thread = await _one_turn(client, agent_id, line.strip(), thread, user, interrupts)


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


async def _one_turn(
    client: AgentClient,
    agent_id: str,
    text: str,
    thread: str | None,
    user: User | None,
    interrupts: _Interrupts,
) -> tuple[int, str | None]:
    out = sys.stdout
    code = EXIT_OK
    with anyio.CancelScope() as scope:
        interrupts.turn = scope
        try:
            async with client.stream(
                agent_id, text, thread=thread, user=user, source="api", stop_on_cancel=True
            ) as run:
                try:
                    async for event in run:
                        _show(event, out, run.text)
                finally:
                    thread = run.task_id or thread
        except errors.RunFailedError as exc:
            thread = exc.task_id
            note(f"error: the agent's turn ended {exc.status}: {exc.task.result or 'no details'}")
            code = EXIT_FAILED
        except errors.UpstreamError as exc:
            note(f"error: {exc}")
            code = EXIT_FAILED
    interrupts.turn = None
    if scope.cancelled_caught:
        out.write("\n")
        out.flush()
        note("· stopped")
        code = EXIT_INTERRUPTED
    if thread:
        note(f"thread: {thread}")
    return code, thread


def _show(event: Event, out: TextIO, streamed: str) -> None:
    if isinstance(event, TextDelta):
        out.write(event.text)
        out.flush()
    elif isinstance(event, TaskFinished):
        result = event.task.result or ""
        if result.startswith(streamed):
            out.write(result[len(streamed) :])
        out.write("\n")
        out.flush()
    elif isinstance(event, ThoughtRecorded) and event.text:
        note(f"· thinking: {event.text}")
    elif isinstance(event, ToolCallRequested):
        note(f"· calling {event.name}")
    elif isinstance(event, ToolCallFinished):
        note(f"· {event.name} {'failed' if event.is_error else 'done'}")
    elif isinstance(event, ResumedByPolling):
        note(f"· stream lost ({event.reason}); waiting for the task to finish")
    elif isinstance(event, AuthEventReceived) and event.is_login_required:
        note(f"· sign-in needed for {event.server_name or 'a connector'}: {event.url}")
    elif isinstance(event, TaskUpdated) and event.task.is_paused:
        request = event.task.hitl_request or {}
        title = request.get("title") or request.get("content") or ""
        note(f"· paused, waiting for approval: {title}")
