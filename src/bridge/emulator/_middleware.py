"""ASGI middleware in front of the emulated API: records every request, checks the API key,
and applies the fault chosen for the request before (or instead of) running the route.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.emulator._emulator import Emulator
from bridge.emulator._faults import Fault, FaultSyntaxError, format_seconds
from bridge.emulator._state import RecordedRequest

__all__ = ["CREATED_SCOPE_KEY", "FAULT_SCOPE_KEY", "EmulatorMiddleware"]

logger = logging.getLogger(__name__)

#: Scope key under which a stream fault is handed to the `/invoke/stream` route.
FAULT_SCOPE_KEY = "bridge.emulator.fault"
#: Scope key of the event an invoke route sets once its turn exists (`create` faults).
CREATED_SCOPE_KEY = "bridge.emulator.created"


class _Replay:
    """A `receive` that first replays the already-read body, then defers to the real one."""

    def __init__(self, body: bytes, receive: Receive | None) -> None:
        self._body: bytes | None = body
        self._receive = receive

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if self._receive is None:
            return {"type": "http.disconnect"}
        return await self._receive()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


class EmulatorMiddleware:
    """Recording, authentication and fault injection for `/health` and `/v1` requests."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            headers=headers,
            body=_parse_json(body),
            time=time.time(),
        )
        self.emulator.record(record)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        replay = _Replay(body, receive)
        if record.path.startswith("/v1") and not self.emulator.is_authorized(
            headers.get("x-api-key")
        ):
            response = JSONResponse({"detail": "Invalid or missing API key"}, status_code=401)
            await response(scope, replay, recording_send)
            return
        try:
            fault = self._choose(record, headers)
        except FaultSyntaxError as exc:
            await JSONResponse({"detail": str(exc)}, status_code=400)(scope, replay, recording_send)
            return
        if fault is None:
            await self.app(scope, replay, recording_send)
            return
        record.fault = fault.describe()
        logger.info("fault %s on %s %s", record.fault, record.method, record.path)
        if fault.create or fault.kind == "reset":
            if fault.create:
                await self._run_detached(scope, body).wait()
            if fault.kind == "reset":
                await self._reset(send)
                return
        if fault.kind == "status":
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = format_seconds(fault.retry_after)
            response = JSONResponse(
                {"detail": fault.detail_or_default}, status_code=fault.status, headers=extra
            )
            await response(scope, replay, recording_send)
        elif record.path.rstrip("/").endswith("/invoke/stream"):
            scope[FAULT_SCOPE_KEY] = fault
            await self.app(scope, replay, recording_send)
        else:
            await self._fault_plain_response(fault, scope, body, recording_send)

    def _choose(self, record: RecordedRequest, headers: dict[str, str]) -> Fault | None:
        header = headers.get("x-emulator-fault")
        if header:
            return Fault.parse(header)
        agents: set[str] = set()
        if record.agent_id is not None:
            agents.add(record.agent_id)
            spec = self.emulator.agents.get(record.agent_id)
            if spec is not None:
                agents.add(spec.name)
        return self.emulator.faults.take(
            record.method, record.path, frozenset(agents), record.thread_id
        )

    async def _fault_plain_response(
        self, fault: Fault, scope: Scope, body: bytes, send: Send
    ) -> None:
        """Apply a drop/stall/garbage fault to a non-stream response."""
        if fault.kind == "garbage":
            messages: list[Message] = []

            async def capture(message: Message) -> None:
                messages.append(message)

            await self.app(scope, _Replay(body, None), capture)
            start = next(m for m in messages if m["type"] == "http.response.start")
            garbage = fault.garbage.encode()
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(garbage)).encode()))
            await send(
                {"type": "http.response.start", "status": start["status"], "headers": headers}
            )
            await send({"type": "http.response.body", "body": garbage, "more_body": False})
            return

        # The request is still processed (a turn keeps running); only its response is lost.
        self._run_detached(scope, body)
        if fault.kind == "stall":
            with anyio.move_on_after(fault.seconds):
                await self.emulator.closing.wait()
        # Starting the response and returning without finishing it makes uvicorn cut the socket.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        self.emulator.expected_aborts += 1

    def _run_detached(self, scope: Scope, body: bytes) -> anyio.Event:
        """Run the request in the emulator's task group with its response discarded; the
        event is set once an invoke's turn exists, or the request ended without one."""
        created = anyio.Event()
        detached = {**scope, CREATED_SCOPE_KEY: created}

        async def discard(message: Message) -> None:
            pass

        async def process_detached() -> None:
            try:
                await self.app(detached, _Replay(body, None), discard)
            except Exception:  # outermost frame of a detached request: log and carry on
                logger.exception("detached %s %s failed", scope["method"], scope["path"])
            finally:
                created.set()

        self.emulator.spawn(process_detached)
        return created

    async def _reset(self, send: Send) -> None:
        """Close the connection before any response byte, as a reset pooled connection does.

        ASGI has no message for it; uvicorn's `send` is a method of the request cycle that
        owns the transport, which is aborted here."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("a reset fault needs the emulator served by uvicorn")
        transport.abort()
        # What follows goes nowhere; it keeps uvicorn from answering 500 on its own.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        self.emulator.expected_aborts += 1
