"""Adapter conformance checks: the contract every adapter keeps, checked the same way for all.

An adapter starts (`task_status.started()` once it accepts work), stops promptly when
cancelled, and turns upstream failures into messages for the user instead of raising.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio

from bridge.adapters import Adapter
from bridge.config import Settings
from bridge.emulator import Emulator, Fault
from bridge.runtime import Runtime, serve

__all__ = ["check_adapter_contract"]

Trigger = Callable[[Runtime], Awaitable[None]]


async def check_adapter_contract(
    adapter: Adapter,
    settings: Settings,
    *,
    emulator: Emulator,
    trigger: Trigger,
    stop_within: float = 10.0,
) -> None:
    """Run the adapter under `bridge.runtime.serve` and check the contract.

    `trigger(runtime)` makes the adapter start one turn through its platform (a message,
    an event, a tool call) and returns once the adapter has answered it; the emulator
    refuses every invoke meanwhile, so the answer must be a rendered error. The check
    fails if the adapter raises, never starts, or does not stop within `stop_within`
    seconds of being cancelled.

    Raises:
        AssertionError: a part of the contract is broken.
    """
    # 503s: refusals the client retries (quickly, as Retry-After says) and then gives up on.
    emulator.inject(Fault(kind="status", status=503, retry_after=0.01, path="/invoke", times=1000))
    stopped = anyio.Event()
    outcome: dict[str, Any] = {}

    async def run(*, task_status: anyio.abc.TaskStatus[Runtime]) -> None:
        try:
            await serve(settings, adapters=[adapter], task_status=task_status)
        finally:
            stopped.set()

    async with anyio.create_task_group() as group:
        with anyio.fail_after(stop_within):
            runtime: Runtime = await group.start(partial(run))
        await trigger(runtime)
        outcome["served"] = not stopped.is_set()
        group.cancel_scope.cancel()
    with anyio.fail_after(stop_within):
        await stopped.wait()
    assert outcome["served"], f"adapter {adapter.name!r} stopped after an upstream failure"
