"""The `Emulator`: agents, tasks and turns, recorded requests, faults, and the control methods.

One instance is one emulated organization. Turns run in the emulator's own task group
(`async with emulator.running()`), independent of the HTTP connection that started them,
so a dropped stream leaves the turn running to completion, as upstream does.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.abc
from starlette.types import ASGIApp

from bridge.emulator._agents import AgentSpec, Timing, TurnContext, TurnFailedSignal, demo_agents
from bridge.emulator._common import IdFactory, utc_iso
from bridge.emulator._common import organization_id as default_organization_id
from bridge.emulator._faults import Fault, FaultQueue
from bridge.emulator._registry import AgentRegistry
from bridge.emulator._schemas import AgentExecutionRequest, input_json
from bridge.emulator._state import RecordedRequest, Signal, TaskRecord, Turn
from bridge.models import TERMINAL_STATUSES

__all__ = ["Emulator", "TaskStateError"]

logger = logging.getLogger(__name__)


class TaskStateError(Exception):
    """The task is not in a state that allows the request (HTTP 409)."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class Emulator:
    """A local, scripted stand-in for the hosted platform API.

    Args:
        api_key: the key every `/v1` request must send as `x-api-key`; `None` accepts
            any non-empty key (then `api_key` reads `"emulator-key"`).
        organization_id: defaults to `uuid5(NAMESPACE, "organization")`.
        demo_agents: register the seven scripted demo agents.
        extra_agents: more agents (`AgentSpec`, or a name for an echo agent).
        keepalive_interval: seconds of stream silence before a `: keep-alive` comment.
        slow_silence, login_timeout, step_delay: delays of the scripted agents.
        seed: makes task ids reproducible; random UUIDs when `None`.
        caller_ids: what an invoke's `id` naming no task does: `keep` starts a new thread
            under that id, `ignore` starts one under an id of its own, `refuse` answers 404.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        organization_id: str | None = None,
        demo_agents: bool = True,
        extra_agents: Iterable[AgentSpec | str] = (),
        keepalive_interval: float = 15.0,
        slow_silence: float = 65.0,
        login_timeout: float = 5.0,
        step_delay: float = 0.0,
        seed: int | str | None = None,
        caller_ids: Literal["keep", "ignore", "refuse"] = "keep",
        control: bool = True,
    ) -> None:
        self.caller_ids = caller_ids
        #: Whether `/_emulator/...` (faults, clock, agents; unauthenticated) is served.
        self.control = control
        self.api_key = api_key if api_key is not None else "emulator-key"
        self.accepts_any_key = api_key is None
        self.organization_id = organization_id or default_organization_id()
        self.keepalive_interval = keepalive_interval
        self.timing = Timing(slow_silence, login_timeout, step_delay)
        self.agents = AgentRegistry()
        self.tasks: dict[str, TaskRecord] = {}
        self.requests: list[RecordedRequest] = []
        #: Thread ids of invoke requests refused with 409 because a turn was still running.
        self.conflicts: list[str] = []
        self.faults = FaultQueue()
        self._ids = IdFactory(seed)
        self._peak: dict[str, int] = {}
        self._running: dict[str, TurnContext] = {}
        self._hub: Signal | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing: anyio.Event | None = None
        self._base_url: str | None = None
        self._app: ASGIApp | None = None
        self.expected_aborts = 0
        for spec in reversed(_initial_agents(demo_agents, extra_agents)):
            self.add_agent(spec)

    # -- agents ---------------------------------------------------------------

    def add_agent(self, spec: AgentSpec | str) -> AgentSpec:
        """Register an agent (it lists first: newest first); a bare name gives an echo agent."""
        return self.agents.add(spec)

    def remove_agent(self, name_or_id: str) -> AgentSpec:
        """Unregister an agent. Raises `KeyError` when there is none."""
        return self.agents.remove(name_or_id)

    def agent(self, name_or_id: str) -> AgentSpec:
        """An agent by id or name. Raises `KeyError` when there is none."""
        return self.agents.find(name_or_id)

    def listed_agents(self) -> list[AgentSpec]:
        return self.agents.listed()

    # -- recording and inspection --------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def clear_requests(self) -> None:
        self.requests.clear()

    def invokes(
        self, thread_id: str | None = None, agent: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded invoke requests, optionally for one thread id and/or one agent (id or name)."""
        wanted = None if agent is None else self.agents.ids_for(agent)
        return [
            request
            for request in self.requests
            if request.is_invoke
            and (thread_id is None or request.thread_id == thread_id)
            and (wanted is None or request.agent_id in wanted)
        ]

    def inject(self, fault: Fault) -> None:
        """Queue a fault for the next matching request(s)."""
        self.faults.add(fault)

    def max_concurrent_turns(self, task_id: str) -> int:
        """Most turns ever requested at once on a thread, counting ones refused with 409."""
        return self._peak.get(task_id, 0)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "tasks": len(self.tasks),
            "turns": sum(len(record.turns) for record in self.tasks.values()),
            "running_turns": len(self._running),
            "conflicts": len(self.conflicts),
            "max_concurrent_turns": dict(self._peak),
            "max_overlap": max(self._peak.values(), default=0),
            "agents": len(self.agents),
            "pending_faults": len(self.faults),
        }

    def is_authorized(self, key: str | None) -> bool:
        if not key:
            return False
        return self.accepts_any_key or hmac.compare_digest(key.encode(), self.api_key.encode())

    @property
    def base_url(self) -> str:
        """`http://host:port` of the server this emulator runs in.

        Raises:
            RuntimeError: the emulator is not being served.
        """
        if self._base_url is None:
            raise RuntimeError("the emulator is not being served")
        return self._base_url

    @property
    def app(self) -> ASGIApp:
        """The ASGI application serving the API and the `/_emulator` control routes."""
        if self._app is None:
            from bridge.emulator._app import create_app

            self._app = create_app(self)
        return self._app

    # -- lifecycle ------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Emulator]:
        """Run the task group that turns execute in; on exit every running turn ends."""
        if self._tg is not None:
            raise RuntimeError("the emulator is already running")
        self._hub, self._closing = Signal(), anyio.Event()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self.close()
                tg.cancel_scope.cancel()
                self._tg = None

    def close(self) -> None:
        """End every running turn (`error`), every stream and every stalled connection."""
        for ctx in list(self._running.values()):
            self._finish(ctx, "error", "The emulator stopped before the turn finished.")
            if ctx.turn.scope is not None:
                ctx.turn.scope.cancel()
        if self._closing is not None:
            self._closing.set()

    @property
    def is_running(self) -> bool:
        return self._tg is not None

    @property
    def closing(self) -> anyio.Event:
        if self._closing is None:
            raise RuntimeError("the emulator is not running; use `async with emulator.running()`")
        return self._closing

    def spawn(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run `func` in the emulator's task group, detached from the current request."""
        if self._tg is None:
            raise RuntimeError("the emulator is not running; use `async with emulator.running()`")
        self._tg.start_soon(func)

    # -- turns ----------------------------------------------------------------

    def start_turn(
        self, spec: AgentSpec, body: AgentExecutionRequest, *, version: str | None, base_url: str
    ) -> TaskRecord:
        """Create a turn (new thread, or the next turn of `body.id`) and start its script.

        Raises:
            TaskStateError: the thread's previous turn has not finished.
        """
        if self._tg is None:
            raise RuntimeError("the emulator is not running; use `async with emulator.running()`")
        thread_id = body.id
        record = self.tasks.get(thread_id) if thread_id else None
        busy = record is not None and not record.latest.is_terminal
        if thread_id:
            self._peak[thread_id] = max(self._peak.get(thread_id, 0), 2 if busy else 1)
        if busy and thread_id:
            self.conflicts.append(thread_id)
            raise TaskStateError(
                thread_id, f"Task {thread_id} is still running; wait for it to finish"
            )
        if record is None:
            kept = thread_id if self.caller_ids == "keep" else None
            record = TaskRecord(
                id=kept or self._ids.task_id(), organization_id=self.organization_id
            )
            self._peak.setdefault(record.id, 1)
            self.tasks[record.id] = record
        turn = Turn(
            number=len(record.turns) + 1,
            agent_id=spec.id,
            input=input_json(body),
            source=body.source or "api",
            request=body.model_dump(mode="json", exclude_unset=True),
            agent_version=version or str(spec.version),
            base_url=base_url,
            hub=self._hub,
        )
        record.turns.append(turn)
        record.add_message("user", turn.text)
        ctx = TurnContext(record, turn, self.timing)
        self._running[record.id] = ctx
        ctx.emit_task("task_created")
        self.spawn(lambda: self._run(ctx, spec))
        return record

    async def _run(self, ctx: TurnContext, spec: AgentSpec) -> None:
        turn = ctx.turn
        if turn.is_terminal:  # stopped before it started
            return
        with anyio.CancelScope() as scope:
            turn.scope = scope
            try:
                turn.status, turn.started_at = "executing", utc_iso()
                ctx.emit_task("task_updated")
                await spec.run(ctx)
            except TurnFailedSignal as signal:
                self._finish(ctx, signal.status, signal.message)
            except Exception:  # the outermost frame of a background turn: log and carry on
                logger.exception("scripted agent %r crashed on task %s", spec.name, ctx.record.id)
                self._finish(ctx, "error", "The scripted agent crashed; see the emulator log.")
            else:
                result = ctx.result if ctx.result is not None else "".join(ctx.chunks)
                self._finish(ctx, "completed", result)

    def _finish(
        self, ctx: TurnContext, status: str, result: str | None, *, stopped: bool = False
    ) -> None:
        turn, record = ctx.turn, ctx.record
        if turn.closed:
            return
        turn.status, turn.result, turn.finished_at = status, result, utc_iso()
        turn.is_manually_stopped, turn.hitl_request = stopped, None
        prompt = max(1, len(turn.text) // 4) + 800
        completion = len(result or "") // 4
        turn.tokens = {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
        }
        if status == "completed":
            metrics = {
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
            }
            record.add_message("assistant", result or "", metrics=metrics)
        ctx.emit_task("task_finished")
        if self._running.get(record.id) is ctx:
            del self._running[record.id]
        turn.close()

    async def wait_turn(self, turn: Turn) -> None:
        """Wait until `turn` is over (or the emulator stops)."""
        await turn.done.wait()

    def task(self, task_id: str) -> TaskRecord:
        """A task by id.

        Raises:
            KeyError: unknown task.
        """
        return self.tasks[task_id]

    def stop(self, task_id: str) -> TaskRecord:
        """Stop the running turn (`stopped`, `is_manually_stopped`); no-op when finished.

        Raises:
            KeyError: unknown task.
        """
        record = self.tasks[task_id]
        ctx = self._running.get(task_id)
        if ctx is not None:
            self._finish(ctx, "stopped", "".join(ctx.chunks) or None, stopped=True)
            if ctx.turn.scope is not None:
                ctx.turn.scope.cancel()
        return record

    def delete(self, task_id: str) -> None:
        """Cancel the running turn, if any, and forget the task.

        Raises:
            KeyError: unknown task.
        """
        self.stop(task_id)
        del self.tasks[task_id]

    def resume(self, task_id: str, *, approved: bool = True) -> dict[str, Any]:
        """Answer the approval request of a paused (or about to pause) turn.

        Raises:
            KeyError: unknown task.
            TaskStateError: the task has no running turn.
        """
        turn = self._running_turn(task_id)
        turn.approved = approved
        turn.resumed.set()
        return self.tasks[task_id].to_json()

    def complete_login(self, task_id: str) -> dict[str, Any]:
        """Complete the end-user login a `signin` turn waits for.

        Raises:
            KeyError: unknown task.
            TaskStateError: the task has no running turn.
        """
        self._running_turn(task_id).logged_in.set()
        return self.tasks[task_id].to_json()

    def _running_turn(self, task_id: str) -> Turn:
        record = self.tasks[task_id]
        ctx = self._running.get(task_id)
        if ctx is None:
            raise TaskStateError(task_id, f"Task {task_id} has no running turn ({record.status})")
        return ctx.turn

    async def wait_for_status(self, task_id: str, *statuses: str) -> TaskRecord:
        """Wait until the task exists and its latest turn has one of `statuses`.

        With no statuses, wait for any terminal status. Bound it with `anyio.fail_after`.
        """
        wanted = set(statuses) or TERMINAL_STATUSES
        while True:
            hub = self._hub
            record = self.tasks.get(task_id)
            if record is not None and record.status in wanted:
                return record
            if hub is None:
                raise RuntimeError("the emulator is not running")
            await hub.wait()


def _initial_agents(demo: bool, extra: Iterable[AgentSpec | str]) -> list[AgentSpec | str]:
    agents: list[AgentSpec | str] = list(demo_agents()) if demo else []
    agents.extend(extra)
    return agents
