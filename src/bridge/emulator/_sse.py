"""The `text/event-stream` response of `/invoke/stream`: frames, keep-alives and stream faults.

The response reads the turn's event log from the start, so it never misses `task_created`,
and follows it until the turn closes. Cutting the connection is done the only way ASGI
allows: returning without completing the response, which makes uvicorn close the socket.
"""

from __future__ import annotations

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bridge.emulator._emulator import Emulator
from bridge.emulator._faults import Fault
from bridge.emulator._state import Turn

__all__ = ["EventStreamResponse"]

KEEPALIVE = b": keep-alive\n\n"
_BATCH = 256


class EventStreamResponse(Response):
    """Streams one turn's events; applies a `drop`, `stall` or `garbage` fault if given."""

    media_type = "text/event-stream"

    def __init__(self, emulator: Emulator, turn: Turn, fault: Fault | None = None) -> None:
        self.emulator = emulator
        self.turn = turn
        self.fault = fault
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        completed: bool | None = None
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            completed = await self._pump(send)
            tg.cancel_scope.cancel()
        if completed is False:
            self.emulator.expected_aborts += 1

    async def _pump(self, send: Send) -> bool:
        """Send the stream; `False` when a fault says the connection must be cut."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        turn, fault = self.turn, self.fault
        index = sent = 0
        while True:
            if index < len(turn.frames):
                batch: list[bytes] = []
                while index < len(turn.frames) and len(batch) < _BATCH:
                    if fault is not None and sent == fault.after:
                        if fault.kind == "garbage":
                            batch.append(fault.garbage.encode())
                            fault = None
                            continue
                        await self._body(send, batch)
                        return await self._cut(fault)
                    batch.append(turn.frames[index])
                    index += 1
                    sent += 1
                await self._body(send, batch)
                continue
            if turn.closed:
                break
            changed = turn.changed
            with anyio.move_on_after(self.emulator.keepalive_interval) as silence:
                await changed.wait()
            if silence.cancelled_caught:
                await self._body(send, [KEEPALIVE])
        if fault is not None and fault.kind != "garbage" and sent == fault.after:
            return await self._cut(fault)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    async def _cut(self, fault: Fault) -> bool:
        if fault.kind == "stall":
            with anyio.move_on_after(fault.seconds):
                await self.emulator.closing.wait()
        return False

    @staticmethod
    async def _body(send: Send, frames: list[bytes]) -> None:
        if frames:
            await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
