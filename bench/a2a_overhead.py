"""A2A overhead: SendMessage round trips through the bridge (`bridge serve` with the A2A
adapter, in its own process) against direct `AgentClient` calls in the same run, at
concurrency 1 and 50, on an instant echo agent, both A2A bindings, with the SDK's client
and with plain JSON-RPC over httpx (the client's own share). Floor rows: the SDK's request
handler with an executor that answers at once (no upstream), and a bare HTTP round trip
to the same kind of server. CPU per call is shown for this process (clients and emulator)
and for the server process.

Loopback only, bounded in count and time. Run: `uv run python bench/a2a_overhead.py`
(`--calls-scale 0.2` for a quick look; `--concurrency 1` for one level; `--profile FILE`
runs the bridge under cProfile). Goal: round trip p50 ≤ 1.5× direct.
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
from contextlib import AsyncExitStack
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
DEADLINE = 900.0
ROUNDS = 4
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    call: Call, total: int, concurrency: int, server: int | None = None
) -> tuple[list[float], float, float]:
    """Run `total` calls, `concurrency` at a time: seconds per call, and the CPU seconds
    per call of this process (clients and emulator) and of the `server` process."""
    here, there = cpu_seconds(os.getpid()), cpu_seconds(server) if server else 0.0
    times = await timed_calls(call, total, concurrency)
    here = cpu_seconds(os.getpid()) - here
    there = cpu_seconds(server) - there if server else 0.0
    return times, here / total, there / total


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


def raw(http: httpx.AsyncClient, url: str) -> Call:
    """SendMessage as plain JSON-RPC over httpx: the client side without the SDK's client."""

    async def call(index: int) -> None:
        message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "p"}]}
        body = {"jsonrpc": "2.0", "id": index, "method": "SendMessage", "params": {}}
        body["params"] = {"message": message}
        answer = (await http.post(url, json=body, headers={"A2A-Version": "1.0"})).json()
        assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", answer

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
    app.mount("/a2a/bare", Router([Route("/", bare_answer, methods=["POST"])]))
    async with anyio.create_task_group() as group:
        port = await group.start(app.serve, "127.0.0.1", 0)
        print(f"bridge serving on 127.0.0.1:{port}", file=sys.stderr, flush=True)


async def bare_answer(request: Request) -> JSONResponse:
    """A fixed answer to any POST: one HTTP round trip on the same server, no A2A at all."""
    body = await request.json()
    task = {"id": "bare", "status": {"state": "TASK_STATE_COMPLETED"}}
    return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": {"task": task}})


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


def report(label: str, times: list[float], base: list[float], cpu: tuple[float, float]) -> None:
    p50, p99 = quantiles(times)
    b50, b99 = quantiles(base)
    print(
        f"  {label:<30} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   "
        f"ratio p50 {p50 / b50:5.2f}x  p99 {p99 / b99:5.2f}x   "
        f"CPU/call bench {cpu[0] * 1000:5.2f} ms  server {cpu[1] * 1000:5.2f} ms"
    )


async def sdk_client(http: httpx.AsyncClient, url: str, binding: str) -> Client:
    config = ClientConfig(streaming=False, httpx_client=http, supported_protocol_bindings=[binding])
    return await ClientFactory(config).create_from_url(url)


async def compare(rows: dict[str, tuple[Call, int | None]], total: int, concurrency: int) -> None:
    """Every row, `total` calls each, measured in interleaved rounds (load that comes and
    goes on the machine then touches every row alike)."""
    for call, server in rows.values():  # warm-up, discarded
        await measure(call, min(total, 100), concurrency, server)
    times: dict[str, list[float]] = {name: [] for name in rows}
    cpu = dict.fromkeys(rows, (0.0, 0.0))
    for _ in range(ROUNDS):
        for name, (call, server) in rows.items():
            taken, here, there = await measure(
                call, max(concurrency, total // ROUNDS), concurrency, server
            )
            times[name] += taken
            cpu[name] = (cpu[name][0] + here / ROUNDS, cpu[name][1] + there / ROUNDS)
    print(f" concurrency {concurrency}, {len(times['direct AgentClient'])} calls each")
    base = times["direct AgentClient"]
    for name in rows:
        report(name, times[name], base, cpu[name])


async def main(scale: float, profile: str | None, levels: list[int]) -> None:
    with anyio.fail_after(DEADLINE):
        async with (
            open_emulator(api_key=API_KEY) as emulator,
            anyio.create_task_group() as group,
            AsyncExitStack() as stack,
        ):

            async def http() -> httpx.AsyncClient:
                """A connection pool per row, as the direct row has its own."""
                limits = httpx.Limits(max_connections=100, keepalive_expiry=2.0)
                client = httpx.AsyncClient(timeout=60.0, limits=limits)
                return await stack.enter_async_context(client)

            profiler = [sys.executable, "-m", "cProfile", "-o", profile] if profile else []
            url, bridge = await start_bridge(
                emulator, group, [*profiler, BRIDGE, "serve", "--only", "a2a"], "echo"
            )
            floor_url, floor = await start_bridge(
                emulator, group, [sys.executable, __file__, "--sdk-floor"], "floor"
            )
            rows: dict[str, tuple[Call, int | None]] = {
                "direct AgentClient": (await direct(emulator), None),
                "bridge, SDK client JSONRPC": (
                    via(await sdk_client(await http(), url, "JSONRPC")),
                    bridge.pid,
                ),
                "bridge, SDK client HTTP+JSON": (
                    via(await sdk_client(await http(), url, "HTTP+JSON")),
                    bridge.pid,
                ),
                "bridge, raw JSON-RPC client": (raw(await http(), url), bridge.pid),
                "SDK floor, SDK client JSONRPC": (
                    via(await sdk_client(await http(), floor_url, "JSONRPC")),
                    floor.pid,
                ),
                "SDK floor, raw JSON-RPC client": (raw(await http(), floor_url), floor.pid),
                "bare HTTP hop, raw client": (
                    raw(await http(), floor_url.replace("/floor/", "/bare/")),
                    floor.pid,
                ),
            }
            print("SendMessage round trips on an instant echo agent (loopback)")
            for concurrency in levels:
                await compare(rows, max(concurrency, int(CALLS[concurrency] * scale)), concurrency)
            for child in (bridge, floor):
                child.terminate()
                await child.wait()
            group.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls-scale", type=float, default=1.0)
    parser.add_argument(
        "--profile", metavar="FILE", help="run the bridge under cProfile, stats written to FILE"
    )
    parser.add_argument(
        "--concurrency", type=int, action="append", choices=sorted(CALLS), help="default: all"
    )
    parser.add_argument("--sdk-floor", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.sdk_floor:
        anyio.run(serve_sdk_floor)
    else:
        anyio.run(main, arguments.calls_scale, arguments.profile, arguments.concurrency or [*CALLS])
