"""MCP overhead: tools/call round trips through the bridge (stdio, HTTP) against direct
`AgentClient` calls and a minimal hand-written `MCPServer` proxy (`_mcp_proxy.py`, the
floor the SDK allows) in the same run, at concurrency 1 and 50, on instant echo agents;
and start-up to the first `tools/list` answer against a bare `MCPServer` hello-world.

Calls in one MCP session continue that session's thread with each agent (the bridge's
documented behaviour), which costs one more upstream request per call (the thread's
message count, taken before the invoke so that a failed invoke is never sent twice): the
"direct, continuing" row does the same with `AgentClient` alone, and the "proxy …,
continuing" rows are the proxy doing it (the like-for-like floor of a session call, shown
beside the bridge's session rows). `bridge HTTP stateless`
has no sessions, so its calls are one-shot like the proxy's; its floor is the proxy in the
SDK's stateless HTTP mode (a transport per request). The `raw` rows call over
plain httpx JSON-RPC instead of the SDK client: what the client SDK costs.

Loopback only, bounded in count and time. Run: `uv run python bench/mcp_overhead.py`
(`--quick`: a tenth of the calls, for development; `--sqlite`: the bridge on a SQLite store,
as `bridge mcp` runs by default, instead of the in-memory one).
Goals: round trip p50 ≤ 1.5× direct and ≤ 1.1× the proxy; start-up ≤ 1.2× the hello-world
(both from cached bytecode, as installed; `--startup`: the start-up rows only).
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from _mcp_raw import RawClient
from _timing import Call, timed_calls
from mcp import Client, StdioServerParameters

from bridge.client import AgentClient
from bridge.emulator import AgentSpec, Emulator
from bridge.testing import open_emulator

API_KEY = "bench-key"
AGENTS = 50
CALLS = {1: 200, 50: 1000}
STORE = "memory://"
if "--sqlite" in sys.argv:
    _STATE = tempfile.mkdtemp(prefix="mcp-bench-")
    atexit.register(shutil.rmtree, _STATE, ignore_errors=True)
    STORE = f"sqlite:///{_STATE}/state.db"
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
        "BRIDGE_STORE__URL": STORE,
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


async def direct_continuing(emulator: Emulator) -> Call:
    """Each agent's calls continue one thread, one at a time (as one session's do)."""
    client = AgentClient(base_url=emulator.base_url, api_key=API_KEY)
    ids = [(await client.find_agent(name)).id for name in agent_names()]
    threads: dict[int, str] = {}
    locks = [anyio.Lock() for _ in ids]

    async def call(index: int) -> None:
        slot = index % AGENTS
        async with (
            locks[slot],
            client.stream(
                ids[slot], f"ping {index}", thread=threads.get(slot), source="api"
            ) as run,
        ):
            threads[slot] = (await run.result()).id

    return call


def raw(client: RawClient) -> Call:
    names = agent_names()

    async def call(index: int) -> None:
        result = await client.call_tool(names[index % AGENTS], {"message": f"ping {index}"})
        assert not result.get("isError"), result

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


async def measure_cpu(call: Call, concurrency: int, pid: int | None) -> tuple[list[float], float]:
    """`measure`, plus the server process's CPU milliseconds per call (immune to load);
    0 without a server process."""
    if pid is None:
        return await measure(call, concurrency), 0.0
    before = cpu_seconds(pid)
    times = await measure(call, concurrency)
    return times, (cpu_seconds(pid) - before) * 1000 / len(times)


def quantiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(label: str, times: list[float], base: list[float], floor: list[float], cpu: str) -> None:
    p50, p99 = quantiles(times)
    b50, b99 = quantiles(base)
    f50, _ = quantiles(floor)
    print(
        f"  {label:<27} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   "
        f"vs direct p50 {p50 / b50:5.2f}x  p99 {p99 / b99:5.2f}x   vs proxy p50 {p50 / f50:5.2f}x"
        f"{cpu}"
    )


ROWS: list[tuple[str, str, str, str | None]] = [
    # (row, its baseline for "vs proxy", the direct call doing the same upstream work, the
    # proxy doing the same upstream work when that is not the baseline)
    ("direct, continuing", "direct, continuing", "direct", None),
    ("proxy stdio", "proxy stdio", "direct", None),
    ("proxy stdio, continuing", "proxy stdio", "direct, continuing", None),
    ("bridge stdio", "proxy stdio", "direct, continuing", "proxy stdio, continuing"),
    ("proxy HTTP", "proxy HTTP", "direct", None),
    ("proxy HTTP, continuing", "proxy HTTP", "direct, continuing", None),
    ("bridge HTTP", "proxy HTTP", "direct, continuing", "proxy HTTP, continuing"),
    ("proxy HTTP stateless", "proxy HTTP stateless", "direct", None),
    ("bridge HTTP stateless", "proxy HTTP stateless", "direct", None),
    ("raw proxy HTTP", "raw proxy HTTP", "direct", None),
    ("raw bridge HTTP", "raw proxy HTTP", "direct, continuing", None),
    ("raw proxy HTTP stateless", "raw proxy HTTP stateless", "direct", None),
    ("raw bridge HTTP stateless", "raw proxy HTTP stateless", "direct", None),
]
"""Rows after `direct AgentClient`; the raw rows call the same servers without the SDK."""


def table(timed: dict[str, tuple[list[float], float]], base: list[float]) -> None:
    report("direct AgentClient", base, base, base, "")
    for name, floor_name, same_work, same_proxy in ROWS:
        times, cpu = timed[name]
        floor, floor_cpu = timed[floor_name]
        server = ""
        if cpu:
            server = f"   server CPU {cpu:5.2f} ms/call"
            if floor_name != name:
                server += f" ({cpu / floor_cpu:4.2f}x)"
        for like in (same_work, same_proxy):
            if like is not None and like != "direct":
                b50, _ = quantiles(timed[like][0])
                server += f"   vs {like} p50 {quantiles(times)[0] / b50:5.2f}x"
        report(name, times, base, floor, server)


async def startup(parameters: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(parameters, mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - started


async def round_trips(emulator: Emulator) -> None:
    print(f"tools/call round trips on instant echo agents ({AGENTS} agents, loopback, {STORE})")
    direct_call, continuing = await direct(emulator), await direct_continuing(emulator)
    env = bridge_env(emulator)
    stdio = StdioServerParameters(command=BRIDGE, args=["mcp"], env=env)
    proxy = StdioServerParameters(command=PROXY[0], args=[*PROXY[1:], "stdio"], env=env)
    proxy_on = StdioServerParameters(
        command=PROXY[0], args=[*PROXY[1:], "stdio", "--continuing"], env=env
    )
    http = [BRIDGE, "mcp", "--transport", "http", "--port", "0"]
    async with anyio.create_task_group() as group, httpx.AsyncClient(timeout=60) as raw_http:
        servers = {
            "bridge HTTP": await http_server(http, emulator, group),
            "bridge HTTP stateless": await http_server([*http, "--stateless"], emulator, group),
            "proxy HTTP": await http_server([*PROXY, "http"], emulator, group),
            "proxy HTTP stateless": await http_server([*PROXY, "http-stateless"], emulator, group),
            "proxy HTTP, continuing": await http_server(
                [*PROXY, "http", "--continuing"], emulator, group
            ),
        }
        raws = {name: RawClient(raw_http, url) for name, (url, _) in servers.items()}
        for client in raws.values():
            await client.open()
        async with (
            Client(stdio, mode="legacy") as stdio_client,
            Client(servers["bridge HTTP"][0], mode="legacy") as http_client,
            Client(servers["bridge HTTP stateless"][0], mode="legacy") as stateless_client,
            Client(proxy, mode="legacy") as proxy_stdio,
            Client(servers["proxy HTTP"][0], mode="legacy") as proxy_http,
            Client(servers["proxy HTTP stateless"][0], mode="legacy") as proxy_stateless,
            Client(proxy_on, mode="legacy") as proxy_stdio_on,
            Client(servers["proxy HTTP, continuing"][0], mode="legacy") as proxy_http_on,
        ):
            children = _children()
            pids = {name: process.pid for name, (_, process) in servers.items()}
            pids["bridge stdio"] = next(
                p for c, p in children.items() if "bridge\x00mcp" in c and "--transport" not in c
            )
            proxies = {c: p for c, p in children.items() if "stdio" in c}
            pids["proxy stdio"] = next(p for c, p in proxies.items() if "continuing" not in c)
            pids["proxy stdio, continuing"] = next(
                p for c, p in proxies.items() if "continuing" in c
            )
            runs: dict[str, tuple[Call, int | None]] = {
                "direct, continuing": (continuing, None),
                "proxy stdio": (via(proxy_stdio), pids["proxy stdio"]),
                "proxy stdio, continuing": (via(proxy_stdio_on), pids["proxy stdio, continuing"]),
                "bridge stdio": (via(stdio_client), pids["bridge stdio"]),
                "proxy HTTP": (via(proxy_http), pids["proxy HTTP"]),
                "proxy HTTP, continuing": (via(proxy_http_on), pids["proxy HTTP, continuing"]),
                "bridge HTTP": (via(http_client), pids["bridge HTTP"]),
                "proxy HTTP stateless": (via(proxy_stateless), pids["proxy HTTP stateless"]),
                "bridge HTTP stateless": (via(stateless_client), pids["bridge HTTP stateless"]),
            }
            for name in servers:
                if "continuing" not in name:
                    runs[f"raw {name}"] = (raw(raws[name]), pids[name])
            for call, _ in runs.values():  # warm-up, discarded: every agent called once
                await timed_calls(call, AGENTS, 10)
            for concurrency in (1, 50):
                await measure(direct_call, concurrency)  # warm-up, discarded
                base = await measure(direct_call, concurrency)
                timed = {
                    name: await measure_cpu(call, concurrency, pid)
                    for name, (call, pid) in runs.items()
                }
                print(f" concurrency {concurrency}, {CALLS[concurrency]} calls each")
                table(timed, base)
        for _, process in servers.values():
            process.terminate()
            await process.wait()
        group.cancel_scope.cancel()


async def main() -> None:
    extra = [AgentSpec(name, "Answers with your message.", "echo") for name in agent_names()]
    with anyio.fail_after(DEADLINE):
        async with open_emulator(api_key=API_KEY, extra_agents=extra) as emulator:
            # Start-up first, while the emulator and this process are fresh.
            await startups(emulator)
            if "--startup" not in sys.argv:
                await round_trips(emulator)


async def startups(emulator: Emulator) -> None:
    """Both servers in the same environment, from bytecode cached in a directory of their
    own (one discarded start each fills it), as an installed package starts: installers
    compile it, and Python caches it on first run. (In a shell with
    PYTHONDONTWRITEBYTECODE=1, modules nobody compiled are compiled again at every start.)"""
    print(f"start-up to first tools/list answer (median of {STARTS}, bytecode cached)")
    with tempfile.TemporaryDirectory(prefix="mcp-bench-pyc-") as cache:
        env = {k: v for k, v in bridge_env(emulator).items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        stdio = StdioServerParameters(command=BRIDGE, args=["mcp"], env=env)
        hello = StdioServerParameters(command=sys.executable, args=["-c", HELLO], env=env)
        await startup(hello)
        await startup(stdio)
        times: list[tuple[float, float]] = []
        for _ in range(STARTS):  # in turns, so that a change of load weighs on both alike
            times.append((await startup(hello), await startup(stdio)))
        bare = statistics.median(hello_time for hello_time, _ in times)
        ours = statistics.median(ours_time for _, ours_time in times)
    print(f"  bare MCPServer hello-world {bare * 1000:7.1f} ms")
    print(f"  bridge mcp (stdio)         {ours * 1000:7.1f} ms   ratio {ours / bare:5.2f}x")


if __name__ == "__main__":
    anyio.run(main)
