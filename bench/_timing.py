"""The timing loop the overhead benches share: `total` calls, `concurrency` at a time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

Call = Callable[[int], Awaitable[None]]


async def timed_calls(call: Call, total: int, concurrency: int) -> list[float]:
    """Run `total` calls, `concurrency` at a time; seconds per call."""
    times: list[float] = []
    next_index = iter(range(total))

    async def worker() -> None:
        for index in next_index:
            started = time.perf_counter()
            await call(index)
            times.append(time.perf_counter() - started)

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    return times
