"""MCP overhead: tools/call round trips through the bridge (stdio, HTTP) against direct
`AgentClient` calls and a minimal hand-written `MCPServer` proxy (`_mcp_proxy.py`, the
floor the SDK allows) in the same run, at concurrency 1 and 50, on instant echo agents;
and start-up to the first `tools/list` answer against a bare `MCPServer` hello-world.

Loopback only, bounded in count and time. Run: `uv run python bench/mcp_overhead.py`
(`--quick`: a tenth of the calls, for development).
Goals: round trip p50 ≤ 1.5× direct and ≤ 1.1× the proxy; start-up ≤ 1.2× the hello-world.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import anyio
from _timing import Call, timed_calls
from mcp import Client, StdioServerParameters

from bridge.client import AgentClient
from bridge.emulator import AgentSpec, Emulator
from bridge.testing import open_emulator

API_KEY = "bench-key"
AGENTS = 50
CALLS = {1: 200, 50: 1000}
if "--quick" in sys.argv:
    CALLS = {1: 20, 50: 100}
STARTS = 5
DEADLINE = 300.0
BRIDGE = str(Path(sys.executable).parent / "bridge")
PROXY = [sys.executable, str(Path(__file__).with_name("_mcp_proxy.py"))]
HELLO = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("hello")
@server.tool()
def hello(name: str) -> str:
    return f"hello {name}"
server.run("stdio")
"""


def bridge_env(emulator: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
        "BRIDGE_UPSTREAM__API_KEY": API_KEY,
        "BRIDGE_STORE__URL": "memory://",
        "BRIDGE_LOG__LEVEL": "WARNING",
    }


async def measure(call: Call, concurrency: int) -> list[float]:
    """Run CALLS[concurrency] calls, `concurrency` at a time; seconds per call."""
    return await timed_calls(call, CALLS[concurrency], concurrency)


def agent_names() -> list[str]:
    return [f"echo-{n}" for n in range(AGENTS)]


async def direct(emulator: Emulator) -> Call:
    client = AgentClient(base_url=emulator.base_url, api_key=API_KEY)
    ids = [(await client.find_agent(name)).id for name in agent_names()]

    async def call(index: int) -> None:
        async with client.stream(ids[index % AGENTS], f"ping {index}", source="api") as run:
            await run.result()

    return call


def via(client: Client) -> Call:
    names = agent_names()

    async def call(index: int) -> None:
        result = await client.call_tool(names[index % AGENTS], {"message": f"ping {index}"})
        assert not result.is_error, result

    return call


async def http_server(
    command: list[str], emulator: Emulator, group: anyio.abc.TaskGroup
) -> tuple[str, anyio.abc.Process]:
    """Start an MCP server over HTTP; its URL is the `MCP endpoint:` line on stderr."""
    process = await anyio.open_process(command, env=bridge_env(emulator))
    assert process.stderr is not None
    buffer = b""
    with anyio.fail_after(30):
        async for chunk in process.stderr:
            buffer += chunk
            if b"MCP endpoint: " in buffer and buffer.endswith(b"\n"):
                break
    line = next(line for line in buffer.decode().splitlines() if "MCP endpoint: " in line)

    async def drain() -> None:
        assert process.stderr is not None
        async for _ in process.stderr:
            pass

    group.start_soon(drain)
    return line.split("MCP endpoint: ", 1)[1].strip(), process


def _children() -> dict[str, int]:
    """This process's children by command line (the stdio servers the SDK client spawned)."""
    found: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                found[(stat.parent / "cmdline").read_bytes().decode()] = int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_cpu(call: Call, concurrency: int, pid: int) -> tuple[list[float], float]:
    """`measure`, plus the server process's CPU milliseconds per call (immune to load)."""
    before = cpu_seconds(pid)
    times = await measure(call, concurrency)
    return times, (cpu_seconds(pid) - before) * 1000 / len(times)


def quantiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(
    label: str, times: list[float], base: list[float], floor: list[float], cpu: str = ""
) -> None:
    p50, p99 = quantiles(times)
    b50, b99 = quantiles(base)
    f50, _ = quantiles(floor)
    print(
        f"  {label:<22} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   "
        f"vs direct p50 {p50 / b50:5.2f}x  p99 {p99 / b99:5.2f}x   vs proxy p50 {p50 / f50:5.2f}x"
        f"{cpu}"
    )


async def startup(parameters: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(parameters, mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - started


async def round_trips(emulator: Emulator) -> None:
    print(f"tools/call round trips on instant echo agents ({AGENTS} agents, loopback)")
    direct_call = await direct(emulator)
    env = bridge_env(emulator)
    stdio = StdioServerParameters(command=BRIDGE, args=["mcp"], env=env)
    proxy = StdioServerParameters(command=PROXY[0], args=[*PROXY[1:], "stdio"], env=env)
    async with anyio.create_task_group() as group:
        url, process = await http_server(
            [BRIDGE, "mcp", "--transport", "http", "--port", "0"], emulator, group
        )
        proxy_url, proxy_process = await http_server([*PROXY, "http"], emulator, group)
        async with (
            Client(stdio, mode="legacy") as stdio_client,
            Client(url, mode="legacy") as http_client,
            Client(proxy, mode="legacy") as proxy_stdio,
            Client(proxy_url, mode="legacy") as proxy_http,
        ):
            children = _children()
            pids = {
                "bridge stdio": next(
                    p for c, p in children.items() if "mcp" in c and "http" not in c
                ),
                "proxy stdio": next(p for c, p in children.items() if "stdio" in c),
                "bridge HTTP": process.pid,
                "proxy HTTP": proxy_process.pid,
            }
            for concurrency in (1, 50):
                await measure(direct_call, concurrency)  # warm-up, discarded
                base = await measure(direct_call, concurrency)
                runs = {
                    "proxy stdio": via(proxy_stdio),
                    "bridge stdio": via(stdio_client),
                    "proxy HTTP": via(proxy_http),
                    "bridge HTTP": via(http_client),
                }
                timed = {
                    name: await measure_cpu(call, concurrency, pids[name])
                    for name, call in runs.items()
                }
                print(f" concurrency {concurrency}, {CALLS[concurrency]} calls each")
                report("direct AgentClient", base, base, base)
                for transport in ("stdio", "HTTP"):
                    floor, floor_cpu = timed[f"proxy {transport}"]
                    ours, ours_cpu = timed[f"bridge {transport}"]
                    report(
                        f"minimal proxy {transport}",
                        floor,
                        base,
                        floor,
                        f"   server CPU {floor_cpu:5.2f} ms/call",
                    )
                    report(
                        f"bridge {transport}",
                        ours,
                        base,
                        floor,
                        f"   server CPU {ours_cpu:5.2f} ms/call ({ours_cpu / floor_cpu:4.2f}x)",
                    )
        for running in (process, proxy_process):
            running.terminate()
            await running.wait()
        group.cancel_scope.cancel()


async def main() -> None:
    extra = [AgentSpec(name, "Answers with your message.", "echo") for name in agent_names()]
    with anyio.fail_after(DEADLINE):
        async with open_emulator(api_key=API_KEY, extra_agents=extra) as emulator:
            if "--startup" not in sys.argv:
                await round_trips(emulator)
            print(f"start-up to first tools/list answer (median of {STARTS})")
            stdio = StdioServerParameters(command=BRIDGE, args=["mcp"], env=bridge_env(emulator))
            hello = StdioServerParameters(command=sys.executable, args=["-c", HELLO])
            bare = statistics.median([await startup(hello) for _ in range(STARTS)])
            ours = statistics.median([await startup(stdio) for _ in range(STARTS)])
            print(f"  bare MCPServer hello-world {bare * 1000:7.1f} ms")
            print(f"  bridge mcp (stdio)         {ours * 1000:7.1f} ms   ratio {ours / bare:5.2f}x")


if __name__ == "__main__":
    anyio.run(main)
