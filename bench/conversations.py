"""Conversations overhead: 1,000 concurrent conversations, each streaming a multi-chunk
answer, through the conversations service (on memory, SQLite, Redis, then Postgres: memory
shows the service alone, without store round trips) against direct `AgentClient` calls
in the same run (before and after them). Conversations arrive evenly over 5 s and each
answer streams for 5 s, so about N are in flight at the peak. Prints turns/s, p50/p99 turn
latency and the added latency, this process's CPU time per turn next to the direct
client's, and its peak RSS. The emulator, redis-server and PostgreSQL run in their own
processes, whose CPU is not counted.

Goals: all 1,000 complete; p99 added <= 50 ms; added CPU per turn <= 2 ms; peak RSS <= 300 MB.
Loopback only; bounded: one round of N turns per mode (two of the direct calls).
Run: uv run python bench/conversations.py [--turns N [N ...]]  (default: 200, then 1000)
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import httpx
from pydantic import SecretStr

from bridge.client import AgentClient
from bridge.config import ConversationsConfig, UpstreamConfig
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.errors import UpstreamError
from bridge.events import TextDelta
from bridge.stores import SessionStore, open_store
from bridge.testing import blocking_postgres_server, blocking_redis_server

MESSAGE = "chars=400 chunks=5 seconds=5"
FAILURES: list[str] = []
ANSWER_SECONDS = 5.0  # how long the emulator streams each answer
ARRIVAL_SECONDS = 5.0  # arrivals spread evenly: with 5 s answers, ~N conversations in flight
API_KEY = "bench-key"
DIRECT, DIRECT_AGAIN = "direct AgentClient", "direct AgentClient again"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_emulator() -> Iterator[str]:
    """The emulator in its own process (its CPU is not this process's); yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "emulator", "--port", str(port), "--api-key", API_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _answers(base_url):
            if time.monotonic() > deadline:
                raise SystemExit("emulator did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


Measured = tuple[list[float], float, int, float]
"""Latencies (s), wall time (s), peak in flight, CPU seconds of this process."""


async def measure(turns: int, one: Callable[[int], Awaitable[int]]) -> Measured:
    """Start `turns` conversations evenly over ARRIVAL_SECONDS; returns the latencies, the
    wall time, the peak number in flight and the CPU time this process spent."""
    latencies: list[float] = []
    in_flight = peak = 0

    async def run(index: int) -> None:
        nonlocal in_flight, peak
        started = time.perf_counter()
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await one(index)
        except UpstreamError as exc:  # counted as not completed, and shown
            FAILURES.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            in_flight -= 1
        latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    gap = ARRIVAL_SECONDS / turns
    async with anyio.create_task_group() as group:
        for index in range(turns):
            group.start_soon(run, index)
            await anyio.sleep(max(0.0, started + (index + 1) * gap - time.perf_counter()))
    return latencies, time.perf_counter() - started, peak, time.process_time() - cpu


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def bench(turns: int, store_urls: dict[str, str]) -> None:
    """Each mode on a fresh emulator process and a fresh client: no mode meets an upstream
    slowed by the tasks of the modes before it, nor pooled connections they left."""
    upstream = UpstreamConfig(max_connections=turns + 50, read_timeout=120, idle_timeout=120)
    results: dict[str, Measured] = {}
    overheads: dict[str, list[float]] = {}
    failed: dict[str, list[str]] = {}
    # The direct calls run first and again last: the machine's load may change meanwhile.
    for mode in [DIRECT, *store_urls, DIRECT_AGAIN]:
        with running_emulator() as base_url:
            async with AgentClient(upstream, base_url=base_url, api_key=API_KEY) as client:
                writer = (await client.find_agent("writer")).id
                FAILURES.clear()
                if mode in store_urls:
                    own: list[float] = []
                    store = open_store(store_urls[mode])
                    await store.open()
                    try:
                        one = via_conversations(client, store, writer, own)
                        results[f"conversations ({mode})"] = await measure(turns, one)
                    finally:
                        await store.close()
                    overheads[mode] = own
                    failed[f"conversations ({mode})"] = list(FAILURES)
                else:
                    results[mode] = await measure(turns, partial(direct, client, writer))
                    failed[mode] = list(FAILURES)
    print_table(turns, results, overheads)
    for mode, errors_seen in failed.items():
        if errors_seen:
            print(f"  {mode}: {len(errors_seen)} turns failed, e.g. {errors_seen[0][:120]}")


async def direct(client: AgentClient, writer: str, _: int) -> int:
    count = 0
    async with client.stream(writer, MESSAGE, source="slack") as run:
        async for event in run:
            count += isinstance(event, TextDelta)
    return count


def via_conversations(
    client: AgentClient, store: SessionStore, writer: str, own: list[float]
) -> Callable[[int], Awaitable[int]]:
    """One turn through the conversations service; `own` collects the time it spent
    outside the stream (lock, ledger, mapping, delivery mark)."""
    conversations = Conversations(client, store, ConversationsConfig(handle_secret=SecretStr("b")))

    async def one(index: int) -> int:
        key = ConversationKey("bench", "space", f"thread-{index}")
        count = 0
        entered = time.perf_counter()
        async with conversations.turn(
            key, Message(text=MESSAGE), agent_id=writer, source="slack"
        ) as turn:
            before = time.perf_counter() - entered
            async for event in turn:
                count += isinstance(event, TextDelta)
            last = time.perf_counter()
        own.append(before + time.perf_counter() - last)
        return count

    return one


def print_table(
    turns: int,
    results: dict[str, Measured],
    overheads: dict[str, list[float]],
) -> None:
    # The baselines: the mean of the first and the last direct round.
    directs = [results[mode] for mode in (DIRECT, DIRECT_AGAIN)]
    base50 = statistics.mean(pct(latencies, 50) for latencies, *_ in directs) * 1000
    base99 = statistics.mean(pct(latencies, 99) for latencies, *_ in directs) * 1000
    base_cpu_ms = statistics.mean(cpu / max(1, len(lat)) * 1000 for lat, _, _, cpu in directs)
    saturated = base50 > ANSWER_SECONDS * 1.1 * 1000
    print(
        f"conversations bench: {turns} conversations arriving over {ARRIVAL_SECONDS:g} s, "
        f"answer = '{MESSAGE}' (each streams 5 chunks over 5 s); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; direct calls "
        + (
            "SATURATED (p50 > 5.5 s): added latency is not meaningful"
            if saturated
            else "not saturated"
        )
    )
    print(
        f"  {'mode':<26} {'done':>5} {'peak':>5} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'+p50 ms':>8} {'+p99 ms':>8} {'CPU ms/turn':>11} {'+CPU ms':>8}"
    )
    for mode, (latencies, wall, peak, cpu) in results.items():
        p50, p99 = pct(latencies, 50) * 1000, pct(latencies, 99) * 1000
        add50, add99 = p50 - base50, p99 - base99
        cpu_ms = cpu / max(1, len(latencies)) * 1000
        print(
            f"  {mode:<26} {len(latencies):>5} {peak:>5} {len(latencies) / wall:>8.0f} {p50:>8.1f} {p99:>8.1f}"
            f" {add50:>8.1f} {add99:>8.1f} {cpu_ms:>11.2f} {cpu_ms - base_cpu_ms:>8.2f}"
        )
    for name, own in overheads.items():
        print(
            f"  service's own time per turn ({name}): p50 {pct(own, 50) * 1000:.1f} ms, "
            f"p99 {pct(own, 99) * 1000:.1f} ms (lock, ledger, mapping, delivery mark; includes waiting for the busy event loop)"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  peak RSS of the bridge process so far: {peak_mb:.0f} MB (goal <= 300 MB); "
        "goals: all complete, +p99 <= 50 ms, +CPU <= 2 ms per turn"
    )
    print(
        "  CPU ms/turn: this process's user+system time over the mode's turns (client, "
        "service and store driver; not the emulator's or the store servers'); +p50, +p99 and "
        "+CPU against the mean of the two direct rounds (their own rows show the spread "
        "between them); every mode runs on a fresh emulator process"
    )


def raise_file_limit() -> None:
    """A thousand streams need more than the usual 1,024 descriptors (the emulator inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def main() -> None:
    raise_file_limit()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--turns", type=int, nargs="+", default=[200, 1000], help="one round per size"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        blocking_redis_server(Path(tmp)) as redis_url,
        blocking_postgres_server() as postgres_url,
    ):
        # memory: the service alone, no store round trips (the floor of the others)
        stores = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/bench.db"}
        stores |= {"redis": redis_url, "postgres": postgres_url}
        for turns in args.turns:
            anyio.run(bench, turns, stores)


if __name__ == "__main__":
    main()
