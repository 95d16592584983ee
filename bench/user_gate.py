"""What the per-user limit costs each message now that its bucket is in the store.

For every store (memory, SQLite, Redis, Postgres) it times `UserGate.admit` on the
store and, as the baseline measured in the same run, `mark_seen`: the dedupe write every
message already makes before the gate. It prints microseconds per call (median and p99)
and the ratio of the gate to that baseline, plus the gate without a store (this
process's own buckets) for reference. Loopback only; the servers are started here.

Run: uv run python bench/user_gate.py [--calls 2000] [--concurrency 8] [--users 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio
from _timing import timed_calls

from bridge.chat import UserGate
from bridge.stores import SessionStore, open_store
from bridge.testing import blocking_postgres_server, blocking_redis_server


def _figures(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


async def _time(
    call: Callable[[int], Awaitable[object]], calls: int, concurrency: int
) -> list[float]:
    async def one(index: int) -> None:
        await call(index)

    return await timed_calls(one, calls, concurrency)


async def _row(name: str, store: SessionStore | None, args: argparse.Namespace) -> str:
    # A limit no caller reaches: every call takes a token, as almost every real message does.
    gate = UserGate(10**9, 60.0, store=store, scope=f"bench-{uuid.uuid4().hex}")
    gate_times = await _time(
        lambda i: gate.admit(f"user-{i % args.users}"), args.calls, args.concurrency
    )
    gate_median, gate_p99 = _figures(gate_times)
    if store is None:
        return f"{name:<22} {gate_median:>10.1f} {gate_p99:>10.1f} {'-':>10} {'-':>10} {'-':>8}"
    run = uuid.uuid4().hex
    seen_times = await _time(
        lambda i: store.mark_seen(f"{run}-{i}", 60), args.calls, args.concurrency
    )
    seen_median, seen_p99 = _figures(seen_times)
    return (
        f"{name:<22} {gate_median:>10.1f} {gate_p99:>10.1f} {seen_median:>10.1f} "
        f"{seen_p99:>10.1f} {gate_median / seen_median:>8.2f}"
    )


async def main(args: argparse.Namespace, redis_url: str, postgres_url: str, folder: Path) -> None:
    urls = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{folder / 'bench.db'}",
        "redis": f"{redis_url}?prefix=bench-{uuid.uuid4().hex}:",
        "postgres": f"{postgres_url}?schema=bench_{uuid.uuid4().hex}",
    }
    print(
        f"user gate: {args.calls} calls per row, {args.concurrency} at a time, {args.users} users"
    )
    print(
        f"{'buckets':<22} {'gate p50':>10} {'gate p99':>10} {'dedupe p50':>10} "
        f"{'dedupe p99':>10} {'ratio':>8}   (microseconds per call; ratio = gate / dedupe p50)"
    )
    print(await _row("this process only", None, args))
    for name, url in urls.items():
        store = open_store(url)
        await store.open()
        try:
            print(await _row(f"store: {name}", store, args))
        finally:
            await store.close()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-gate-") as folder,
        blocking_redis_server(folder) as redis_url,
        blocking_postgres_server() as postgres_url,
    ):
        anyio.run(main, args, redis_url, postgres_url, Path(folder))


if __name__ == "__main__":
    run()
