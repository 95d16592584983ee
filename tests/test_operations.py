"""Operations: /healthz, /readyz, /metrics, structured logs, no secret in logs or upstream."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

from bridge.config import load_settings, secret_values
from bridge.emulator import Fault
from bridge.logs import configure_logging, log_context
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator
from tests.test_adapters import EchoLineAdapter, EchoLineConfig

API_KEY = "upstream-key-4f1c9e"
HANDLE_SECRET = "handle-secret-77aa01"


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(api_key=API_KEY) as emu:
        yield emu


def settings_for(emulator: Any, api_key: str = API_KEY) -> Any:
    return load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": api_key, "max_attempts": 1},
            "http": {"port": 0},
            "store": {"url": "memory://"},
            "conversations": {"handle_secret": HANDLE_SECRET},
            "log": {"level": "DEBUG", "format": "json"},
        },
        environ={},
    )


async def with_bridge(settings: Any, body: Any) -> Any:
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(
            partial(serve, settings, adapters=[EchoLineAdapter(EchoLineConfig())])
        )
        async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
            result = await body(http, runtime)
        group.cancel_scope.cancel()
    return result


async def test_readyz_reports_upstream_store_and_adapters(emulator: Any) -> None:
    async def probe(http: httpx.AsyncClient, runtime: Runtime) -> httpx.Response:
        return await http.get("/readyz")

    ready = await with_bridge(settings_for(emulator), probe)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"upstream": "ok", "store": "ok", "adapter:line": "ok"}


async def test_readyz_fails_with_a_wrong_key(emulator: Any) -> None:
    settings = settings_for(emulator, api_key="wrong-key")

    async def probe(http: httpx.AsyncClient, runtime: Runtime) -> httpx.Response:
        return await http.get("/readyz")

    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(partial(serve, settings, adapters=[]))
        async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
            not_ready = await probe(http, runtime)
        group.cancel_scope.cancel()
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["upstream"] == "failed: AuthenticationError"


async def test_metrics_count_turns_by_source_agent_and_status(emulator: Any) -> None:
    async def talk(http: httpx.AsyncClient, runtime: Runtime) -> str:
        await http.post("/line", json={"text": "hello"})
        return (await http.get("/metrics")).text

    text = await with_bridge(settings_for(emulator), talk)
    assert 'bridge_turns_started_total{agent="' in text and 'source="api"' in text
    assert 'status="completed"' in text
    assert "bridge_first_text_seconds_count" in text
    assert "bridge_turn_duration_seconds_bucket" in text
    assert "bridge_inflight_turns 0.0" in text


def test_json_logs_carry_the_turn_context_and_redact_secrets() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", secrets=["tok-123456"], stream=stream)
    try:
        with log_context(key="slack|T|1", agent="a1", source="slack", task_id="t-9"):
            logging.getLogger("bridge.test").info("posting with tok-123456 in the url")
    finally:
        logging.getLogger().removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["task_id"] == "t-9" and entry["source"] == "slack" and entry["key"] == "slack|T|1"
    assert "tok-123456" not in stream.getvalue()
    assert "********" in entry["message"]


async def test_no_secret_reaches_a_log_line_or_an_upstream_payload(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(emulator)
    secrets = secret_values(settings)
    assert API_KEY in secrets and HANDLE_SECRET in secrets
    caplog.set_level(logging.DEBUG)

    async def scenarios(http: httpx.AsyncClient, runtime: Runtime) -> None:
        await http.post("/line", json={"text": "hello"})
        await http.post("/line", json={"text": "again", "thread": "other"})
        emulator.inject(Fault(kind="status", status=500, path="/invoke"))
        assert "error" in (await http.post("/line", json={"text": "fails"})).json()
        await http.get("/readyz")
        await http.get("/metrics")

    await with_bridge(settings, scenarios)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in logged
    for request in emulator.requests:
        payload = json.dumps(request.body) + json.dumps(request.query)
        headers = {k: v for k, v in request.headers.items() if k != "x-api-key"}
        for secret in secrets:
            assert secret not in payload
            assert secret not in json.dumps(headers)


async def test_drain_lets_a_running_turn_finish_then_stops(tmp_path: Any) -> None:
    async with open_emulator(api_key=API_KEY, slow_silence=0.5, keepalive_interval=0.1) as emulator:
        settings = settings_for(emulator)
        settings.conversations.drain_timeout = 10
        answers: list[Any] = []
        adapter = EchoLineAdapter(EchoLineConfig(agent="slow"))
        async with anyio.create_task_group() as group:
            runtime: Runtime = await group.start(partial(serve, settings, adapters=[adapter]))

            async def ask() -> None:
                async with httpx.AsyncClient(base_url=runtime.http.base_url, timeout=30) as http:
                    answers.append((await http.post("/line", json={"text": "finish me"})).json())

            group.start_soon(ask)
            with anyio.fail_after(10):
                await adapter.created.wait()
            await runtime.drain()
    assert answers and "answer" in answers[0]


async def test_a_turn_past_the_drain_timeout_stays_in_the_ledger(tmp_path: Any) -> None:
    from bridge.stores import open_store

    url = f"sqlite:///{tmp_path}/state.db"
    async with open_emulator(api_key=API_KEY, slow_silence=30, keepalive_interval=0.1) as emulator:
        settings = settings_for(emulator)
        settings.store.url = url
        settings.conversations.drain_timeout = 0.2
        adapter = EchoLineAdapter(EchoLineConfig(agent="slow"))
        async with anyio.create_task_group() as group:
            runtime: Runtime = await group.start(partial(serve, settings, adapters=[adapter]))

            async def ask() -> None:
                async with httpx.AsyncClient(base_url=runtime.http.base_url, timeout=30) as http:
                    with contextlib.suppress(httpx.HTTPError):  # the bridge stops before answering
                        await http.post("/line", json={"text": "too slow"})

            group.start_soon(ask)
            with anyio.fail_after(10):
                await adapter.created.wait()  # the ledger has the task id by then
            await runtime.drain()
            group.cancel_scope.cancel()
    store = open_store(url)
    await store.open()
    try:
        turns = await store.list_turns()
    finally:
        await store.close()
    assert len(turns) == 1 and turns[0].task_id and turns[0].text == "too slow"


async def test_each_turn_is_one_span_with_its_task_id(emulator: Any) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    async def talk(http: httpx.AsyncClient, runtime: Runtime) -> None:
        await http.post("/line", json={"text": "traced"})

    await with_bridge(settings_for(emulator), talk)
    spans = [span for span in exporter.get_finished_spans() if span.name == "bridge.turn"]
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["bridge.source"] == "api"
    assert attributes["bridge.task_id"] in emulator.tasks
