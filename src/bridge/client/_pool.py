"""httpcore's connection pool, with a pass that does not walk the whole pool every time.

httpcore 1.0's `_assign_requests_to_connections` runs on every request and every
response close, and counts all connections once per idle one: quadratic in the pool
size, most of the client's CPU with a thousand streams open. The same decisions here:
connections that closed, expired or exceed the keep-alive limit are cleared in a sweep
at most four times a second (or at once when the pool is full), and an idle connection
is probed (keep-alive expiry, server hang-up) right before it is reused.
"""

from __future__ import annotations

import time

import httpcore
import httpx
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface

__all__ = ["LinearPool", "use_linear_pool"]


class LinearPool(httpcore.AsyncConnectionPool):
    """`httpcore.AsyncConnectionPool` whose pass costs little when there is nothing to do."""

    SWEEP_SECONDS = 0.25
    _next_sweep = 0.0
    _requests_seen = 0
    _may_have_idle = True
    """False after a walk found no idle connection, until a request leaves the pool."""

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        # A connection turns idle only when its request leaves, which runs a pass.
        if len(self._requests) <= self._requests_seen:
            self._may_have_idle = True
        self._requests_seen = len(self._requests)
        queued: list[AsyncPoolRequest] = [r for r in self._requests if r.connection is None]
        now = time.monotonic()
        swept = now >= self._next_sweep
        if not queued and not swept:
            return []  # the common pass: a response closed, nothing waits
        # Idle connections handed to a request that has not started on them yet: neither
        # closed nor handed to a second request (which would fail and be queued again).
        reserved = {r.connection for r in self._requests if r.connection is not None}
        closing: list[AsyncConnectionInterface] = []
        if swept:
            self._sweep(reserved, closing, now)
        for request in queued:
            assigned = self._connection_for(request.request.url.origin, reserved, closing)
            if assigned is None and not swept:  # full: clear out what is dead, then retry
                swept = True
                self._sweep(reserved, closing, now)
                assigned = self._connection_for(request.request.url.origin, reserved, closing)
            if assigned is not None:
                request.assign_to_connection(assigned)
                reserved.add(assigned)
        return closing

    def _sweep(
        self,
        reserved: set[AsyncConnectionInterface],
        closing: list[AsyncConnectionInterface],
        now: float,
    ) -> None:
        """Drop closed connections; close idle ones that expired or exceed keep-alive."""
        self._next_sweep = now + self.SWEEP_SECONDS
        kept: list[AsyncConnectionInterface] = []
        # httpcore compares the number of connections still in the pool (not of idle
        # ones) with the keep-alive limit; so does this count.
        remaining = len(self._connections)
        for connection in self._connections:
            if connection.is_closed():
                remaining -= 1
            elif (
                connection.is_idle()
                and connection not in reserved
                and (remaining > self._max_keepalive_connections or connection.has_expired())
            ):
                remaining -= 1
                closing.append(connection)
            else:  # a busy connection neither expires nor counts against keep-alive
                kept.append(connection)
        self._connections = kept

    def _connection_for(
        self,
        origin: httpcore.Origin,
        reserved: set[AsyncConnectionInterface],
        closing: list[AsyncConnectionInterface],
    ) -> AsyncConnectionInterface | None:
        """A live unreserved connection to reuse, else a new one if the limit allows
        (closing an idle one to make room), else None (the request stays queued)."""
        kept = self._connections
        found, expired = None, []
        for candidate in kept if self._may_have_idle else ():
            if (
                candidate.can_handle_request(origin)
                and candidate.is_available()
                and candidate not in reserved
            ):
                if not (candidate.is_idle() and candidate.has_expired()):
                    found = candidate
                    break
                expired.append(candidate)
        for connection in expired:
            kept.remove(connection)
            closing.append(connection)
        if found is not None:
            return found
        self._may_have_idle = False
        if len(kept) >= self._max_connections:
            idle = next((c for c in kept if c.is_idle() and c not in reserved), None)
            if idle is None:
                return None
            kept.remove(idle)
            closing.append(idle)
        connection = self.create_connection(origin)
        kept.append(connection)
        return connection


def use_linear_pool(client: httpx.AsyncClient) -> None:
    """Give `client`'s default transport a `LinearPool` (proxied and mounted transports,
    pools of other classes and other httpcore versions are left as they are)."""
    transport = client._transport
    if isinstance(transport, httpx.AsyncHTTPTransport):
        pool = transport._pool
        # The pass reads the pool's private state as httpcore 1.0 keeps it.
        if type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__.startswith("1.0."):
            # Same state, same constructor: only the assignment pass differs.
            pool.__class__ = LinearPool
