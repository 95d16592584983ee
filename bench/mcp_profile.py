"""Where an MCP tools/call spends the server's time: `bridge mcp` and the minimal proxy
(`_mcp_proxy.py`) profiled (cProfile, steady state only: `_profiled.py`) over stdio or HTTP
while a client makes N calls on instant echo agents. Prints each server's own time per call
grouped by package, then its top functions.

Run: `uv run python bench/mcp_profile.py [stdio|http] [--calls N] [--concurrency C] [--top K]`.
Loopback only; the profiles live in a temporary directory.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

import anyio
from _timing import timed_calls
from mcp import Client, StdioServerParameters
from mcp_overhead import API_KEY, PROXY, _children, agent_names, bridge_env, http_server, via

from bridge.emulator import AgentSpec, Emulator
from bridge.testing import open_emulator

PROFILED = str(Path(__file__).with_name("_profiled.py"))
WARM_UP = 50
_GROUPS = (
    ("bridge_mcp", "bridge_mcp/"),
    ("bridge core", "/src/bridge/"),
    ("mcp SDK", "/mcp/"),
    ("mcp_types", "/mcp_types/"),
    ("pydantic", "/pydantic"),
    ("anyio", "/anyio/"),
    ("httpx/httpcore", "/http"),
    ("starlette/uvicorn", "/starlette/"),
    ("starlette/uvicorn", "/uvicorn/"),
    ("sse_starlette", "/sse_starlette/"),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
    ("logging", "/logging/"),
)


def _commands(profile: Path, transport: str, stateless: bool) -> dict[str, list[str]]:
    http = ["--transport", "http", "--port", "0"] if transport == "http" else []
    http += ["--stateless"] if stateless and http else []
    run = [sys.executable, PROFILED]
    return {
        "proxy": [
            *run,
            str(profile / "proxy.prof"),
            PROXY[1],
            transport + ("-stateless" if stateless and http else ""),
        ],
        "bridge": [*run, str(profile / "bridge.prof"), "-m", "bridge", "mcp", *http],
    }


async def _profile(client: Client, pid: int, calls: int, concurrency: int) -> None:
    call = via(client)
    await timed_calls(call, WARM_UP, min(concurrency, WARM_UP))
    os.kill(pid, signal.SIGUSR1)
    await client.list_tools()  # the server has taken the signal once it answers
    await timed_calls(call, calls, concurrency)
    os.kill(pid, signal.SIGUSR2)
    await client.list_tools()


async def _drive(
    command: list[str], transport: str, emulator: Emulator, calls: int, c: int
) -> None:
    if transport == "stdio":
        parameters = StdioServerParameters(
            command=command[0], args=command[1:], env=bridge_env(emulator)
        )
        async with Client(parameters, mode="legacy") as client:
            pid = next(p for line, p in _children().items() if PROFILED in line)
            await _profile(client, pid, calls, c)
        return
    async with anyio.create_task_group() as group:
        url, process = await http_server(command, emulator, group)
        async with Client(url, mode="legacy") as client:
            await _profile(client, process.pid, calls, c)
        process.terminate()
        await process.wait()
        group.cancel_scope.cancel()


def _group(filename: str) -> str:
    if not filename.startswith(("/", "<")) and filename != "~":
        return "other"
    for name, marker in _GROUPS:
        if marker in filename:
            return name
    return "builtins/C" if filename == "~" else "other"


def _show(path: Path, title: str, top: int, calls: int) -> None:
    stats = pstats.Stats(str(path), stream=io.StringIO())
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    by_group: Counter[str] = Counter()
    for (filename, _, _), (_, _, own, _, _) in raw.items():
        by_group[_group(filename)] += own
    total = sum(by_group.values())
    print(f"== {title}: {total * 1000 / calls:.3f} ms own time per call under cProfile")
    for name, own in by_group.most_common():
        print(f"   {name:<18} {own * 1000 / calls:7.3f} ms  {own / total:6.1%}")
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    print(f"-- top {top} functions by own time (ms per call, calls per call)")
    for (filename, line, function), (_, ncalls, own, cumulative, _) in rows:
        where = f"{'/'.join(Path(filename).parts[-2:])}:{line}({function})"
        print(
            f"   {own * 1000 / calls:7.3f}  cum {cumulative * 1000 / calls:7.3f}"
            f"  x{ncalls / calls:6.1f}  {where}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("transport", choices=("stdio", "http"), nargs="?", default="stdio")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", choices=("bridge", "proxy"))
    parser.add_argument("--stateless", action="store_true", help="the bridge without sessions")
    parser.add_argument("--keep", type=Path, help="write the profiles here (kept)")
    args = parser.parse_args()
    extra = [AgentSpec(name, "Answers with your message.", "echo") for name in agent_names()]
    with tempfile.TemporaryDirectory() as tmp, anyio.fail_after(600):
        profile = args.keep or Path(tmp)
        profile.mkdir(parents=True, exist_ok=True)
        names = [args.only] if args.only else ["proxy", "bridge"]
        async with open_emulator(api_key=API_KEY, extra_agents=extra) as emulator:
            commands = _commands(profile, args.transport, args.stateless)
            for name in names:
                await _drive(commands[name], args.transport, emulator, args.calls, args.concurrency)
        for name in names:
            _show(profile / f"{name}.prof", f"{name} {args.transport}", args.top, args.calls)


if __name__ == "__main__":
    anyio.run(main)
