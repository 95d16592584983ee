"""R5, upstream side: whatever bytes the platform sends, the client yields events or raises
a `bridge.errors.UpstreamError` subclass, never anything else, in bounded memory.

`RawPlatform` is a tiny HTTP server on a raw socket that answers the stream request with
given bytes (any status line, any body, cut where it ends) and every poll with a given
body; `sse_cases()` is the Hypothesis strategy that draws those bytes.
"""

from __future__ import annotations

import contextvars
import json
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.client import AgentClient
from bridge.config import UpstreamConfig
from bridge.errors import EventTooLargeError, UpstreamError
from bridge.events import Event

__all__ = [
    "MEMORY_BOUND",
    "RawPlatform",
    "SSECase",
    "check_sse",
    "oversize_streams",
    "run_sse_fuzz",
    "sse_cases",
]

#: Client settings for fuzzing: the smallest event bound, no retries, short patience.
FUZZ_UPSTREAM = UpstreamConfig(
    max_event_bytes=1024,
    max_attempts=1,
    idle_timeout=0.5,
    read_timeout=2.0,
    connect_timeout=2.0,
    poll_interval=0.01,
    poll_interval_max=0.02,
    poll_timeout=0.2,
)
#: Peak traced memory allowed while 8 MiB streams are refused (their event bound is 1 MiB);
#: a client that buffered a whole stream would need more than 8 MiB.
MEMORY_BOUND = 6 * 1024 * 1024


@dataclass(frozen=True)
class SSECase:
    """What the raw platform answers: the stream's head and body pieces, and the polls' body."""

    head: bytes
    pieces: tuple[bytes, ...]
    poll: bytes = b"{}"


class RawPlatform:
    """Answers every request on a raw socket, without any HTTP library on this side."""

    def __init__(self, case: SSECase) -> None:
        self.case = case
        self.requests = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                request = await _read_request(stream)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            self.requests += 1
            try:
                if b"/invoke/stream" in request.split(b"\r\n", 1)[0]:
                    await stream.send(self.case.head)
                    for piece in self.case.pieces:
                        await stream.send(piece)
                else:
                    poll = self.case.poll
                    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    await stream.send(head + b"content-length: %d\r\n\r\n" % len(poll) + poll)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return


async def _read_request(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += await stream.receive()
    return head


@asynccontextmanager
async def serving(case: SSECase) -> AsyncIterator[str]:
    """Serve `case` on 127.0.0.1:<free port>; yields the base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    platform = RawPlatform(case)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, platform.handle)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            group.cancel_scope.cancel()


async def stream_case(case: SSECase) -> str:
    """Run one streamed turn against `case`: "events" when the run ended normally, else
    the name of the `UpstreamError` subclass it raised. Anything else propagates."""
    async with (
        serving(case) as base_url,
        AgentClient(FUZZ_UPSTREAM, base_url=base_url, api_key="fuzz") as client,
    ):
        try:
            with anyio.fail_after(10):
                async with client.stream("agent-fuzz", "hello") as run:
                    async for event in run:
                        if not isinstance(event, Event):
                            raise TypeError(f"not an event: {event!r}")
        except UpstreamError as exc:
            return type(exc).__name__
    return "events"


def check_sse(case: SSECase) -> str:
    """`stream_case` in its own event loop (Hypothesis examples are synchronous), in a fresh
    context: an earlier async test's context can still name the running library for sniffio."""
    return contextvars.Context().run(anyio.run, stream_case, case)


# -- what the raw platform sends ---------------------------------------------------

_TYPES = [
    "task_created",
    "task_updated",
    "task_finished",
    "chunk",
    "think",
    "analyze",
    "tool_call_request",
    "tool_call_result",
    "auth_event",
    "plan_updated",
    "sub_agent_trigger",
    "task_compactization",
    "mystery",
]
_TASK = {"id": "t-1", "status": "completed", "result": "done", "agent_id": "a"}
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_data = st.one_of(
    _json_values,
    st.just(_TASK),
    st.builds(
        dict,
        id=st.text(max_size=6),
        status=st.sampled_from(["pending", "executing", "completed", "failed", "weird"]),
        result=st.none() | st.text(max_size=30),
    ),
)
_envelope = st.builds(
    lambda kind, data, task: json.dumps(
        {"type": kind, "task_id": task, "organization_id": "o", "time": "now", "data": data}
    ),
    st.sampled_from(_TYPES),
    _data,
    st.sampled_from(["t-1", "t-2", None]),
)
_line_end = st.sampled_from(["\n", "\r", "\r\n"])
_field = st.one_of(
    st.builds(lambda text: f"data: {text}", _envelope),
    st.builds(lambda text: f"data:{text}", st.text(max_size=40)),
    st.builds(lambda text: f": {text}", st.text(max_size=10)),
    st.builds(lambda text: f"event: {text}", st.text(max_size=10)),
    st.builds(lambda text: f"id: {text}", st.text(max_size=10)),
    st.builds(lambda text: f"retry: {text}", st.text(max_size=5)),
    st.builds(lambda size: "data: " + "x" * size, st.integers(900, 3000)),
    st.text(max_size=30),
)


def _event(kind: str, data: object) -> str:
    envelope = {"type": kind, "task_id": "t-1", "organization_id": "o", "time": "now"}
    return "data: " + json.dumps({**envelope, "data": data}) + "\n\n"


@st.composite
def _body(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=600))
    lines = draw(st.lists(st.tuples(_field, _line_end, st.booleans()), max_size=12))
    text = "".join(field + end + (end if blank else "") for field, end, blank in lines)
    if draw(st.booleans()):
        # A run that starts well, with the noise inside it, and may or may not finish.
        end = _event("task_finished", _TASK) if draw(st.booleans()) else ""
        text = _event("task_created", {**_TASK, "status": "pending"}) + text + end
    return text.encode("utf-8", "surrogatepass")


_heads = st.one_of(
    st.just(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"),
    st.builds(
        lambda status: (
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" % status
        ),
        st.sampled_from([200, 202, 204, 301, 400, 404, 409, 422, 429, 500, 503]),
    ),
    st.binary(max_size=40).map(lambda junk: junk + b"\r\n\r\n"),
)


@st.composite
def sse_cases(draw: st.DrawFn) -> SSECase:
    """A status line and headers (mostly a good one), a body cut into pieces, a poll body."""
    body = draw(_body())
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = tuple(body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True))
    poll = draw(
        st.one_of(
            st.just(json.dumps(_TASK).encode()),
            _json_values.map(lambda value: json.dumps(value).encode()),
            st.binary(max_size=50),
        )
    )
    return SSECase(draw(_heads), tuple(piece for piece in pieces if piece), poll)


def run_sse_fuzz(examples: int) -> Counter[str]:
    """Run `examples` derandomized Hypothesis examples; returns the outcomes counted. An
    outcome outside the promise fails the run with Hypothesis's shrunk example."""
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(sse_cases())
    def fuzz(case: SSECase) -> None:
        outcomes[check_sse(case)] += 1

    fuzz()
    return outcomes


# -- bounded memory --------------------------------------------------------------------


def _endless(line: bytes, total: int) -> Iterator[bytes]:
    chunk = line * (65536 // len(line) + 1)
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


async def oversize_streams(megabytes: int = 8, limit: int = 1024 * 1024) -> tuple[list[str], int]:
    """Streams of `megabytes` MiB, far over the event bound `limit`: one endless line, one
    endless event of short `data:` lines, one endless run of lone CRs. Returns the
    outcomes and the peak of traced memory while the client refused them."""
    total = megabytes * 1024 * 1024
    cases = [
        (b"data: ", b"x" * 1024),
        (b"", b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
        (b"data: ", b"x\r" * 512),
    ]
    outcomes = []
    # After a refused stream the client asks the same server for the task; that answer is
    # bounded too (at a quarter of the event bound, so that MEMORY_BOUND measures streams).
    config = FUZZ_UPSTREAM.model_copy(
        update={"max_event_bytes": limit, "max_response_bytes": limit // 4}
    )
    tracemalloc.start()
    try:
        for prefix, line in cases:
            outcomes.append(await _stream_endless(config, prefix, line, total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcomes, peak


async def _stream_endless(config: UpstreamConfig, prefix: bytes, line: bytes, total: int) -> str:
    """Like `stream_case`, with a body generated as it is sent (never held whole)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                await _read_request(stream)
                await stream.send(head + prefix)
                for chunk in _endless(line, total):
                    await stream.send(chunk)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with AgentClient(config, base_url=f"http://127.0.0.1:{port}", api_key="x") as client:
            try:
                with anyio.fail_after(30):
                    async with client.stream("agent-fuzz", "hello") as run:
                        async for _ in run:
                            pass
                outcome = "events"
            except EventTooLargeError:
                outcome = "EventTooLargeError"
            except UpstreamError as exc:
                outcome = type(exc).__name__
        group.cancel_scope.cancel()
    return outcome
