"""Run states kept in the store, so that `get_run` and `cancel_run` work on any replica.

The replica running a run writes its state on every change of status; another
replica reads it and asks the platform for the task's latest state.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.abc

from bridge import errors
from bridge.client import AgentClient
from bridge.stores import SessionStore
from bridge_mcp._inbound import principal_digest
from bridge_mcp._outbound import run_state
from bridge_mcp._runs import AgentRun

__all__ = ["RunRecords"]

logger = logging.getLogger(__name__)

_FINAL = {"completed": "completed", "failed": "failed", "error": "error", "stopped": "stopped"}
_POLL = 1.0
_CANCEL_WAIT = 15.0


def _snapshot(run: AgentRun) -> tuple[Any, ...]:
    return (run.status, run.task_id, run.conversation, run.attention, run.done.is_set())


class RunRecords:
    """`mcp-run:<id>` records: a run's `get_run` state plus a digest of its principal."""

    def __init__(self, store: SessionStore, client: AgentClient, *, ttl: float) -> None:
        self._store = store
        self._client = client
        self._ttl = ttl

    async def share(self, run: AgentRun, tool: str, group: anyio.abc.TaskGroup) -> None:
        """Write the run's state now, then (in `group`) at each change until it ends.

        Only runs that outlive their call are shared: nobody can ask for the others."""
        # The snapshot of what is saved, taken before the save's round trip: a change made
        # meanwhile (the task id, say) differs from it, so `_publish` writes it at once.
        written = _snapshot(run)
        await self._save(run, tool)
        group.start_soon(self._publish, run, tool, written)

    async def _publish(self, run: AgentRun, tool: str, written: tuple[Any, ...]) -> None:
        while True:
            changed = run.changed()
            now = _snapshot(run)
            if now != written:
                written = now
                await self._save(run, tool)
            if run.done.is_set():
                return
            await changed.wait()

    async def _save(self, run: AgentRun, tool: str) -> None:
        record = {**run_state(run, tool), "principal": principal_digest(run.principal)}
        try:
            await self._store.put_record(f"mcp-run:{run.id}", json.dumps(record), self._ttl)
        except errors.StoreError as exc:
            logger.warning("could not share the state of run %s: %s", run.id, exc)

    async def load(self, run_id: str, principal: str) -> dict[str, Any] | None:
        """The run's latest state, if it exists and belongs to `principal`."""
        raw = await self._store.get_record(f"mcp-run:{run_id}")
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        if record.pop("principal", None) != principal_digest(principal):
            return None
        return await self._from_platform(record)

    async def _from_platform(self, state: dict[str, Any]) -> dict[str, Any]:
        """A state written while working, brought up to date from the task."""
        if state["status"] in _FINAL or not state.get("task_id"):
            return state
        try:
            task = await self._client.get_task(state["task_id"])
        except errors.UpstreamError as exc:
            logger.info("could not read task of run %s: %s", state["run"], exc)
            return state
        status = _FINAL.get(task.status)
        if status is not None:
            answer = task.result or state["text"]
            state = {**state, "status": status, "answer": answer, "attention": None}
        return state

    async def wait(self, run_id: str, principal: str, seconds: float) -> dict[str, Any] | None:
        """Like `load`, waiting up to `seconds` for the run to end."""
        state = await self.load(run_id, principal)
        with anyio.move_on_after(seconds):
            while state is not None and state["status"] not in _FINAL:
                await anyio.sleep(_POLL)  # another replica runs it: nothing local to wait on
                state = await self.load(run_id, principal)
        return state

    async def cancel(self, run_id: str, principal: str) -> dict[str, Any] | None:
        """Stop a run another replica runs, through its task; a run whose task the platform
        has not named yet is waited for (as a local cancel waits) until it has one."""
        state = await self.load(run_id, principal)
        with anyio.move_on_after(_CANCEL_WAIT):
            while state is not None and state["status"] not in _FINAL and not state.get("task_id"):
                await anyio.sleep(_POLL / 10)  # the running replica writes the task id soon
                state = await self.load(run_id, principal)
        if state is None or state["status"] in _FINAL or not state.get("task_id"):
            return state
        try:
            task = await self._client.stop_task(state["task_id"])
        except errors.UpstreamError as exc:
            logger.warning("could not stop task of run %s: %s", run_id, exc)
            return state
        return {**state, "status": _FINAL.get(task.status, "stopped"), "attention": None}
