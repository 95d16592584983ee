"""A2A overhead: SendMessage round trips through the bridge (`bridge serve` with the A2A
adapter, in its own process) against direct `AgentClient` calls in the same run, at
concurrency 1 and 50, on an instant echo agent, both A2A bindings. One more row shows the
floor the SDK sets: its request handler with an executor that answers at once, no upstream.

Loopback only, bounded in count and time. Run: `uv run python bench/a2a_overhead.py`
(`--calls-scale 0.2` for a quick look). Goal: round trip p50 ≤ 1.5× direct.
"""

from __future__ import annotations

import os

# As in the bridge: the SDK's per-call OpenTelemetry spans off (set before it is imported).
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

import argparse
import re
import statistics
import sys
import uuid
from pathlib import Path

import anyio
import anyio.abc
import httpx
from _timing import Call, timed_calls
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState
from bridge_a2a._cards import CARD_PATH, agent_card
from bridge_a2a._config import A2AConfig
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router

from bridge.client import AgentClient
from bridge.emulator import Emulator
from bridge.http import HttpApp
from bridge.models import Agent
from bridge.testing import open_emulator

API_KEY = "bench-key"
CALLS = {1: 200, 50: 1000}
DEADLINE = 600.0
BRIDGE = str(Path(sys.executable).parent / "bridge")
LISTENING = re.compile(rb"bridge serving on 127\.0\.0\.1:(\d+)")


def bridge_env(emulator: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
        "BRIDGE_UPSTREAM__API_KEY": API_KEY,
        "BRIDGE_STORE__URL": "memory://",
        "BRIDGE_LOG__LEVEL": "INFO",
        "BRIDGE_HTTP__PORT": "0",
        "BRIDGE_ADAPTERS__A2A__USER_RATE_LIMIT": "1000000",
    }


async def measure(call: Call, total: int, concurrency: int) -> list[float]:
    """Run `total` calls, `concurrency` at a time; seconds per call."""
    return await timed_calls(call, total, concurrency)


async def direct(emulator: Emulator) -> Call:
    client = AgentClient(base_url=emulator.base_url, api_key=API_KEY)
    agent = (await client.find_agent("echo")).id

    async def call(index: int) -> None:
        async with client.stream(agent, f"ping {index}", source="api") as run:
            await run.result()

    return call


def via(client: Client) -> Call:
    async def call(index: int) -> None:
        request = SendMessageRequest(
            message=Message(
                message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=f"ping {index}")]
            )
        )
        async for response in client.send_message(request):
            assert response.task.status.state == TaskState.TASK_STATE_COMPLETED, response

    return call


class _Instant(AgentExecutor):
    """Answers every message at once: what the SDK's request handler costs on its own."""

    async def execute(self, context: RequestContext, queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        await queue.enqueue_event(new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED))
        updater = TaskUpdater(queue, task_id, context_id)
        await updater.start_work()
        await updater.add_artifact([Part(text="pong")], artifact_id="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, queue: EventQueue) -> None:
        return None


async def serve_sdk_floor() -> None:
    """`--sdk-floor`: serve the instant executor on 127.0.0.1:<free port>, print the port."""
    card = agent_card(Agent(id="floor", name="floor"), "floor", "http://127.0.0.1", A2AConfig())
    handler = DefaultRequestHandlerV2(
        agent_executor=_Instant(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = HttpApp()
    routes = [
        Route(CARD_PATH, card_response),
        *create_jsonrpc_routes(handler, "/"),
        Mount("/rest", routes=create_rest_routes(handler)),
    ]
    app.mount("/a2a/floor", Router(routes))
    async with anyio.create_task_group() as group:
        port = await group.start(app.serve, "127.0.0.1", 0)
        print(f"bridge serving on 127.0.0.1:{port}", file=sys.stderr, flush=True)


async def card_response(request: Request) -> JSONResponse:
    base = f"{request.url.scheme}://{request.url.netloc}"
    served = agent_card(Agent(id="floor", name="floor"), "floor", base, A2AConfig())
    return JSONResponse(agent_card_to_dict(served))


async def start_bridge(
    emulator: Emulator, group: anyio.abc.TaskGroup, command: list[str], name: str
) -> tuple[str, anyio.abc.Process]:
    process = await anyio.open_process(command, env=bridge_env(emulator))
    assert process.stderr is not None
    buffer = b""
    with anyio.fail_after(30):
        async for chunk in process.stderr:
            buffer += chunk
            found = LISTENING.search(buffer)
            if found:
                break
    assert found is not None, buffer.decode()[-2000:]

    async def drain() -> None:
        assert process.stderr is not None
        async for _ in process.stderr:
            pass

    group.start_soon(drain)
    return f"http://127.0.0.1:{int(found.group(1))}/a2a/{name}/", process


def quantiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(label: str, times: list[float], base: list[float]) -> None:
    p50, p99 = quantiles(times)
    b50, b99 = quantiles(base)
    print(
        f"  {label:<22} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   "
        f"ratio p50 {p50 / b50:5.2f}x  p99 {p99 / b99:5.2f}x"
    )


async def main(scale: float, profile: str | None) -> None:
    with anyio.fail_after(DEADLINE):
        async with (
            open_emulator(api_key=API_KEY) as emulator,
            anyio.create_task_group() as group,
            httpx.AsyncClient(
                timeout=60.0, limits=httpx.Limits(max_connections=100, keepalive_expiry=2.0)
            ) as http,
        ):
            profiler = [sys.executable, "-m", "cProfile", "-o", profile] if profile else []
            url, process = await start_bridge(
                emulator, group, [*profiler, BRIDGE, "serve", "--only", "a2a"], "echo"
            )
            floor_url, floor = await start_bridge(
                emulator, group, [sys.executable, __file__, "--sdk-floor"], "floor"
            )
            direct_call = await direct(emulator)
            clients = {}
            for binding in ("JSONRPC", "HTTP+JSON"):
                config = ClientConfig(
                    streaming=False, httpx_client=http, supported_protocol_bindings=[binding]
                )
                clients[f"bridge A2A {binding}"] = await ClientFactory(config).create_from_url(url)
            floor_config = ClientConfig(streaming=False, httpx_client=http)
            clients["SDK alone (no upstream)"] = await ClientFactory(floor_config).create_from_url(
                floor_url
            )
            print("SendMessage round trips on an instant echo agent (loopback)")
            for concurrency in (1, 50):
                total = max(concurrency, int(CALLS[concurrency] * scale))
                await measure(direct_call, total, concurrency)  # warm-up, discarded
                for client in clients.values():
                    await measure(via(client), min(total, 100), concurrency)
                base = await measure(direct_call, total, concurrency)
                results = {n: await measure(via(c), total, concurrency) for n, c in clients.items()}
                print(f" concurrency {concurrency}, {total} calls each")
                report("direct AgentClient", base, base)
                for name, times in results.items():
                    report(name, times, base)
            for child in (process, floor):
                child.terminate()
                await child.wait()
            group.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls-scale", type=float, default=1.0)
    parser.add_argument(
        "--profile", metavar="FILE", help="run the bridge under cProfile, stats written to FILE"
    )
    parser.add_argument("--sdk-floor", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.sdk_floor:
        anyio.run(serve_sdk_floor)
    else:
        anyio.run(main, arguments.calls_scale, arguments.profile)
