"""One holder across replicas: work that runs only while this process holds a store lock
(a single consumer, such as one long poller per bot), with the others standing by."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from bridge.stores._base import SessionStore

__all__ = ["hold_lease"]

logger = logging.getLogger(__name__)


async def hold_lease(
    store: SessionStore,
    name: str,
    owner: str,
    lease: float,
    work: Callable[[], Awaitable[None]],
    *,
    on_standby: Callable[[], None] = lambda: None,
) -> None:
    """Run `work` while `owner` holds the lock `name`; return when `work` returns.

    The lock is renewed every third of `lease`; a replica that cannot take it calls
    `on_standby` and tries again as often. When a renewal fails (the lease ran out, another
    replica took over) `work` is cancelled and runs again once the lock is taken back. The
    lock is released whenever `work` stops, even when cancelled. Raises what `work` or the
    store raised (`StoreError`).
    """
    while True:
        if not await store.acquire_lock(name, owner, lease):
            on_standby()
            await anyio.sleep(lease / 3)
            continue
        try:
            if await _while_renewed(store, name, owner, lease, work):
                return
        finally:
            with anyio.CancelScope(shield=True):
                await store.release_lock(name, owner)


async def _while_renewed(
    store: SessionStore, name: str, owner: str, lease: float, work: Callable[[], Awaitable[None]]
) -> bool:
    """Run `work` while the lock renews: True when it returned, False when the lock was lost."""
    done = False
    async with anyio.create_task_group() as group:

        async def run() -> None:
            nonlocal done
            await work()
            done = True
            group.cancel_scope.cancel()

        group.start_soon(run)
        while True:
            await anyio.sleep(lease / 3)
            if not await store.renew_lock(name, owner, lease):
                break
        # Reached only when the lock was lost: `work` returning cancels this loop.
        logger.error("lost the lock %s: its work stops until it is taken back", name)
        group.cancel_scope.cancel()
    return done
