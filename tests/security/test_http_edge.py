"""Attacks on the HTTP edge over real sockets: oversize bodies (declared and streamed),
half-sent requests, idle keep-alive connections, connection floods and log floods."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from bridge_slack.testing import FakeSlack, sign
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from tests.security.conftest import WEBHOOK_SECRET, read_to_eof, serving, status_of

MiB = 1024 * 1024
ENDPOINTS = ["/slack/events", WEBHOOK_PATH, "/mcp", "/healthz"]


def _head(path: str, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_declared_oversize_body_is_refused_with_413_before_it_is_sent(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, path: str
) -> None:
    async with serving(emulator, slack, telegram) as edge:
        stream = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with stream:
            await stream.send(_head(path, f"Content-Length: {200 * MiB}\r\n"))
            with anyio.fail_after(10):
                answer = await read_to_eof(stream)
    assert status_of(answer) == 413
    assert b"connection: close" in answer.lower()
    assert not emulator.invokes()


@pytest.mark.parametrize("path", ["/slack/events", WEBHOOK_PATH, "/mcp"])
async def test_a_streamed_oversize_body_is_refused_with_413_once_it_passes_the_cap(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, path: str
) -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"[" * 64 * 1024)
    secret = f"X-Telegram-Bot-Api-Secret-Token: {WEBHOOK_SECRET}\r\n"
    accept = "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
    async with serving(emulator, slack, telegram) as edge:
        stream = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with stream:
            await stream.send(_head(path, f"Transfer-Encoding: chunked\r\n{secret}{accept}"))
            for _ in range(24):  # 1.5 MiB, no Content-Length
                await stream.send(chunk)
            await stream.send(b"0\r\n\r\n")
            with anyio.fail_after(10):
                answer = await read_to_eof(stream)
    assert status_of(answer) == 413
    assert not emulator.invokes()


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_streamed_flood_is_cut_off_long_before_it_ends(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, path: str
) -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    sent = 0
    async with serving(emulator, slack, telegram) as edge:
        stream = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with stream:
            await stream.send(_head(path, "Transfer-Encoding: chunked\r\n"))
            with anyio.fail_after(30):
                try:
                    while sent < 256 * MiB:
                        await stream.send(chunk)
                        sent += 64 * 1024
                except (anyio.BrokenResourceError, ConnectionResetError, BrokenPipeError):
                    pass
        async with httpx.AsyncClient() as http:
            alive = await http.get(f"{edge.url}/healthz")
    assert sent < 256 * MiB  # kernel buffers take a few MiB; the bridge read about 2
    assert alive.status_code == 200
    assert not emulator.invokes()


async def test_each_adapter_body_cap_is_configurable(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "x" * 5000})
    small = json.dumps({"type": "url_verification", "challenge": "c"})
    secret = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    caps = {"max_body_bytes": 4096}
    async with (
        serving(emulator, slack, telegram, slack_options=caps, telegram_options=caps) as edge,
        httpx.AsyncClient() as http,
    ):
        slack_big = await edge.events.post(body, "application/json")
        slack_small = await edge.events.post(small, "application/json")
        telegram_big = await http.post(f"{edge.url}{WEBHOOK_PATH}", content=body, headers=secret)
        telegram_small = await http.post(f"{edge.url}{WEBHOOK_PATH}", content=small, headers=secret)
        mcp_big = await http.post(f"{edge.url}/mcp", content=body)  # [http] default: 1 MiB
    assert slack_big.status_code == 413  # a valid signature does not lift the cap
    assert slack_small.status_code == 200
    assert telegram_big.status_code == 413
    assert telegram_small.status_code == 400  # read: not an update
    assert mcp_big.status_code != 413


async def test_an_unsigned_slack_body_is_refused_before_bolt_parses_or_logs_it(
    emulator: Emulator,
    slack: FakeSlack,
    telegram: FakeBotAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = "unsigned-marker-7f3a"
    body = json.dumps({"type": "event_callback", "event": {"text": marker * 20000}})
    async with serving(emulator, slack, telegram) as edge, httpx.AsyncClient() as http:
        bolt = logging.getLogger("bridge_slack.bolt")
        bolt.setLevel(logging.DEBUG)  # were Bolt to see the request, it would log the body
        caplog.set_level(logging.DEBUG)
        forged = await http.post(
            f"{edge.url}/slack/events",
            content=body,
            headers={"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"},
        )
        unsigned = await http.post(f"{edge.url}/slack/events", content=body)
    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert not [r for r in caplog.records if marker in r.getMessage()]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Slack-Request-Timestamp", "abc"),
        ("X-Slack-Request-Timestamp", "١٧٠٠٠٠٠٠٠٠"),
        ("X-Slack-Request-Timestamp", ""),
        ("X-Slack-Request-Timestamp", "1e9"),
        ("X-Slack-Request-Timestamp", "-5"),
        ("X-Slack-Request-Timestamp", "9" * 400),
        ("X-Slack-Signature", "v0=\xff\xfe"),
        ("X-Slack-Signature", "v0=é"),
        ("X-Slack-Signature", ""),
    ],
)
async def test_a_malformed_slack_signature_header_is_a_401_not_a_500(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, header: str, value: str
) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c"})
    headers = sign(slack.signing_secret, body) | {header: value}
    async with serving(emulator, slack, telegram) as edge, httpx.AsyncClient() as http:
        response = await http.post(
            f"{edge.url}/slack/events",
            content=body.encode(),
            headers={k: v.encode("utf-8") for k, v in headers.items()},
        )
    assert response.status_code == 401


async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    async with serving(emulator, slack, telegram) as edge, httpx.AsyncClient() as http:
        on_slack = await edge.events.post(nested, "application/json")
        wrapped = '{"type": "event_callback", "event": ' + nested + "}"
        on_slack_object = await edge.events.post(wrapped, "application/json")
        on_telegram = await http.post(
            f"{edge.url}{WEBHOOK_PATH}",
            content=nested,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        on_mcp = await http.post(
            f"{edge.url}/mcp",
            content=nested,
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            },
        )
        alive = await http.get(f"{edge.url}/healthz")
    assert on_slack.status_code == 400
    assert on_slack_object.status_code == 400
    assert on_telegram.status_code == 400
    assert 400 <= on_mcp.status_code < 500
    assert alive.status_code == 200


async def test_a_half_sent_request_head_is_closed_after_the_header_timeout(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    async with serving(emulator, slack, telegram, http={"header_timeout": 0.3}) as edge:
        silent = await anyio.connect_tcp("127.0.0.1", edge.port)
        partial = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with silent, partial:
            await partial.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            with anyio.fail_after(10):
                assert await read_to_eof(silent) == b""
                assert await read_to_eof(partial) == b""


async def test_an_idle_keep_alive_connection_is_closed_and_a_slow_second_head_too(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    limits = {"keep_alive_timeout": 0.3, "header_timeout": 0.3}
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    async with serving(emulator, slack, telegram, http=limits) as edge:
        idle = await anyio.connect_tcp("127.0.0.1", edge.port)
        slow = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with idle, slow:
            await idle.send(request)
            await slow.send(request + b"GET /healthz HTTP/1.1\r\n")  # then never the rest
            with anyio.fail_after(10):
                first = await read_to_eof(idle)
                second = await read_to_eof(slow)
    assert status_of(first) == 200 and first.count(b"HTTP/1.1") == 1
    assert status_of(second) == 200 and second.count(b"HTTP/1.1") == 1


async def test_connections_over_the_cap_are_closed_at_once_and_healthz_answers_after(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    limits = {"max_connections": 8, "header_timeout": 600}
    async with serving(emulator, slack, telegram, http=limits) as edge:
        held = [await anyio.connect_tcp("127.0.0.1", edge.port) for _ in range(8)]
        for stream in held:  # each has been accepted once it answers a request
            await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(await stream.receive()) == 200
        extra = await anyio.connect_tcp("127.0.0.1", edge.port)
        async with extra:
            await extra.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            with anyio.fail_after(10):
                refused = await read_to_eof(extra)
        for stream in held:
            await stream.aclose()
        async with httpx.AsyncClient() as http:
            with anyio.fail_after(10):
                while True:  # the server notices the closed connections on its next turn
                    answer = await http.get(f"{edge.url}/healthz")
                    if answer.status_code == 200:
                        break
    assert refused == b""


async def test_a_flood_of_half_sent_requests_is_reaped_and_logged_once(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"max_connections": 40, "header_timeout": 0.5, "log_interval": 3600}
    caplog.set_level(logging.DEBUG)
    async with serving(emulator, slack, telegram, http=limits) as edge:
        streams = [await anyio.connect_tcp("127.0.0.1", edge.port) for _ in range(300)]
        for stream in streams:
            await stream.send(b"GET /healthz HTTP/1.1\r\n")
        with anyio.fail_after(30):
            for stream in streams:
                assert await read_to_eof(stream) == b""
                await stream.aclose()
        async with httpx.AsyncClient() as http:
            alive = await http.get(f"{edge.url}/healthz")
        garbage = []
        for _ in range(100):
            stream = await anyio.connect_tcp("127.0.0.1", edge.port)
            async with stream:
                await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
                with anyio.fail_after(10):
                    garbage.append(status_of(await read_to_eof(stream)))
    assert alive.status_code == 200
    assert set(garbage) == {400}
    refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
    invalid = [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
    assert len(refusals) == 1
    assert len(invalid) == 1


async def test_accept_failures_when_descriptors_run_out_are_logged_once_per_interval() -> None:
    script = Path(__file__).with_name("_listener.py")
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    async with await anyio.open_process([sys.executable, str(script)], cwd=root, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        out = BufferedByteReceiveStream(proc.stdout)
        with anyio.fail_after(30):
            port = int((await out.receive_until(b"\n", 100)).split()[1])
            held = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(60)]
            assert await out.receive_until(b"\n", 100) == b"GOAL"
        for stream in held:
            await stream.aclose()
        proc.terminate()
        with anyio.fail_after(10):
            await proc.wait()
        stderr = b""
        async for chunk in proc.stderr:
            stderr += chunk
    lines = stderr.decode().splitlines()
    assert len([line for line in lines if "out of system resource" in line]) == 1


@pytest.mark.parametrize(
    "secret", ["\xff\xfe", "é" + WEBHOOK_SECRET, WEBHOOK_SECRET[:-1], "x" * 5000]
)
async def test_a_malformed_telegram_secret_header_is_a_403_not_a_500(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, secret: str
) -> None:
    async with serving(emulator, slack, telegram) as edge, httpx.AsyncClient() as http:
        response = await http.post(
            f"{edge.url}{WEBHOOK_PATH}",
            content=b'{"update_id": 1}',
            headers={"X-Telegram-Bot-Api-Secret-Token": secret.encode("utf-8")},
        )
    assert response.status_code == 403
