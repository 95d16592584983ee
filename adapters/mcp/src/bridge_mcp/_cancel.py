"""Cancellation of tool calls that have no session to carry it (stateless HTTP, 2026-07-28).

Such a call is found by who made it and its JSON-RPC request id: on this replica
directly, on any other through a short-lived record in the store that the replica
running the call checks while it runs (one watcher task for all of them).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from bridge import errors
from bridge.stores import SessionStore
from bridge_mcp._inbound import principal_digest
from bridge_mcp._runs import AgentRun

__all__ = ["DetachedCalls"]

logger = logging.getLogger(__name__)

_SKEW = 2.0
"""Seconds of clock difference between replicas tolerated when matching a cancel to a call."""


class DetachedCalls:
    """The running detached calls of this replica, and the store's cancel records."""

    def __init__(self, store: SessionStore, *, poll_interval: float) -> None:
        self._store = store
        self._poll = poll_interval
        self._scopes: dict[str, tuple[float, anyio.CancelScope]] = {}
        self._runs: dict[str, AgentRun] = {}
        self._busy = anyio.Event()

    @staticmethod
    def key(principal: str, request_id: Any) -> str:
        return f"mcp-cancel:{principal_digest(principal)}:{json.dumps(request_id)}"

    @contextmanager
    def following(self, principal: str, request_id: Any, run: AgentRun) -> Iterator[None]:
        """While a call follows `run`, a cancel for its request stops the run."""
        key = self.key(principal, request_id)
        self._runs[key] = run
        try:
            yield
        finally:
            if self._runs.get(key) is run:
                del self._runs[key]

    async def serve(self, principal: str, request_id: Any, call: Any) -> bool:
        """Await `call()` (the HTTP exchange of the request) unless the request is cancelled
        first, here or on another replica; returns True when it was cancelled."""
        key = self.key(principal, request_id)
        with anyio.CancelScope() as scope:
            entry = (time.time(), scope)
            self._scopes[key] = entry
            self._busy.set()
            try:
                await call()
            finally:
                if self._scopes.get(key) is entry:
                    del self._scopes[key]
        if scope.cancelled_caught:
            await self._stop_run(key)
        return scope.cancelled_caught

    async def cancel(self, principal: str, request_id: Any) -> None:
        """Cancel the request wherever it runs."""
        key = self.key(principal, request_id)
        try:
            await self._store.put_record(key, repr(time.time()), max(60.0, self._poll * 20))
        except errors.StoreError as exc:
            logger.warning("could not record a cancel for other replicas: %s", exc)
        entry = self._scopes.get(key)
        if entry is not None:
            entry[1].cancel()
        else:
            await self._stop_run(key)

    async def _stop_run(self, key: str) -> None:
        run = self._runs.get(key)
        if run is not None and not run.done.is_set():
            with anyio.CancelScope(shield=True), anyio.move_on_after(15):
                run.cancel()
                await run.done.wait()

    async def watch(self) -> None:
        """Until cancelled: every `poll_interval`, look in the store for cancels of the
        calls running here (sent to another replica)."""
        while True:
            if not self._scopes:
                self._busy = anyio.Event()
                await self._busy.wait()
            await anyio.sleep(self._poll)
            for key, (started, scope) in list(self._scopes.items()):
                try:
                    stamp = await self._store.get_record(key)
                except errors.StoreError as exc:
                    logger.warning("could not check the store for cancels: %s", exc)
                    break
                if stamp is not None and float(stamp) >= started - _SKEW:
                    scope.cancel()
