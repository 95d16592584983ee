"""httpcore's connection pool with a linear assignment pass (the client's largest CPU cost).

httpcore 1.0's `_assign_requests_to_connections` runs on every request and every
response close, and counts all connections once per idle one: quadratic in the pool
size, most of the client's CPU with a thousand streams open. Same decisions here, in
one walk of the pool, probing idle connections (the only ones that can expire) before
reuse and in a sweep at most four times a second.
"""

from __future__ import annotations

import time

import httpcore
import httpx
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface

__all__ = ["LinearPool", "use_linear_pool"]


class LinearPool(httpcore.AsyncConnectionPool):
    """`httpcore.AsyncConnectionPool` making the same assignments in linear time.

    An idle connection is probed (keep-alive expiry, server hang-up: a `poll()` on its
    socket) before it is reused, and every idle one at most every `SWEEP_SECONDS`,
    instead of every idle one on every pass.
    """

    SWEEP_SECONDS = 0.25
    _next_sweep = 0.0

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        now = time.monotonic()
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
        queued: list[AsyncPoolRequest] = []
        # Idle connections handed to a request that has not started on them yet: neither
        # closed nor handed to a second request (which would fail and be queued again).
        reserved: set[AsyncConnectionInterface] = set()
        for request in self._requests:
            if request.connection is None:
                queued.append(request)
            else:
                reserved.add(request.connection)
        closing: list[AsyncConnectionInterface] = []
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
                and (
                    (sweep and connection.has_expired())
                    or remaining > self._max_keepalive_connections
                )
            ):
                remaining -= 1
                closing.append(connection)
            else:  # a busy connection neither expires nor counts against keep-alive
                kept.append(connection)
        self._connections = kept
        for request in queued:
            assigned = self._connection_for(request.request.url.origin, reserved, closing)
            if assigned is not None:
                request.assign_to_connection(assigned)
                reserved.add(assigned)
        return closing

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
        for candidate in kept:
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
        if len(kept) >= self._max_connections:
            idle = next(
                (c for c in kept if c.is_idle() and c not in reserved),
                None,
            )
            if idle is None:
                return None
            kept.remove(idle)
            closing.append(idle)
        connection = self.create_connection(origin)
        kept.append(connection)
        return connection


def use_linear_pool(client: httpx.AsyncClient) -> None:
    """Give `client`'s default transport a `LinearPool` (proxied and mounted transports,
    and pools of other classes, are left as they are)."""
    transport = client._transport
    if isinstance(transport, httpx.AsyncHTTPTransport):
        pool = transport._pool
        if type(pool) is httpcore.AsyncConnectionPool:
            # Same state, same constructor: only the assignment pass differs.
            pool.__class__ = LinearPool
