"""Chaos bench: the reliability scenarios of `tests/chaos` at full size, side by side.

R1  upstream cuts, stalls, garbage, 429/503/500/502, resets (before and after the turn was
    created) on N Telegram turns (--turns, default 1,000)
R2  Telegram 429/5xx and Slack 429, ok:false ratelimited and 5xx on the answer path
R3  Slack retries x3 and Telegram webhook replays across two replicas on one Redis store
R4  `bridge serve` killed with SIGKILL mid-turn and restarted (--kills, default 100);
R4' the same, plus a kill the moment each recovered answer lands (--race-kills, 30):
    recovered Telegram answers edit the placeholder recorded at the turn's start: none twice;
    the same on Slack (Socket Mode, native streams): the stream is started and recorded
    before the turn goes on, a placeholder is found by its tag: none twice, none left open
R5  forged, stale, unsigned and malformed requests, 100k-character messages, an event over
    max_event_bytes; Hypothesis-fuzzed event streams, 32 MiB oversize streams, bad configs
R7  hostile users: poison Markdown, broadcasts and tg:// links through agent output,
    oversize and unsigned bodies, deep JSON, other users' turns, floods (refused or
    contained; the process must keep serving)

Prints one row per scenario: turns, answered, duplicates, lost, rate-limit waits honoured
(x/y), rejections (refusals the design promises: errors shown to the user, 4xx answers,
redeliveries absorbed, `UpstreamError`s, `ConfigError`s), seconds. Loopback only, seeded,
every wait bounded; it stops by itself. R3 needs `redis-server` on PATH.

Run: uv run python bench/chaos.py [--turns 1000] [--kills 100] [--seed 1] [--only R1 ...]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# The scenarios live with their tests, in tests/chaos.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio
from tests.chaos._fuzz import MEMORY_BOUND, oversize_streams, run_sse_fuzz
from tests.chaos._hostile import config_errors, run_hostile_requests
from tests.chaos._kills import run_kills
from tests.chaos._kit import Figures, format_table
from tests.chaos._platform import (
    run_slack_platform_faults,
    run_telegram_platform_faults,
)
from tests.chaos._replicas import run_replicas
from tests.chaos._slack_kills import run_slack_kills
from tests.chaos._upstream import run_upstream_chaos
from tests.chaos._users import run_hostile_users

from bridge.testing import blocking_redis_server

#: No scenario may run longer than this; one that does is reported, and the bench goes on.
SCENARIO_LIMIT = 20 * 60.0
FUZZ_EXAMPLES = 500


async def _bounded(name: str, run: Callable[[], Awaitable[Figures]]) -> Figures:
    started = time.monotonic()
    with anyio.move_on_after(SCENARIO_LIMIT):
        figures = await run()
        print(f"done: {figures.scenario} ({figures.seconds:.0f}s)", file=sys.stderr, flush=True)
        return figures
    failed = Figures(name, seconds=time.monotonic() - started)
    failed.notes.append(f"stopped after {SCENARIO_LIMIT:.0f}s")
    return failed


async def _r1(turns: int, seed: int) -> Figures:
    report = await run_upstream_chaos(turns, seed)
    unkept = sum(not outcome.as_promised for outcome in report.turns)
    if unkept:
        report.figures.notes.append(f"{unkept} turns ended otherwise than the design promises")
    return report.figures


async def _r2_telegram(seed: int) -> Figures:
    report = await run_telegram_platform_faults(60, seed)
    report.figures.notes.append(f"{report.faults_hit} Bot API calls answered 429 or 5xx")
    return report.figures


async def _r2_slack(seed: int) -> Figures:
    report = await run_slack_platform_faults(10, seed)
    report.figures.notes.append(f"{report.faults_hit} Web API calls answered 429, ok:false or 5xx")
    return report.figures


async def _r3(seed: int, redis_url: str) -> Figures:
    return (await run_replicas(20, 100, seed, redis_url)).figures


async def _r4(kills: int, seed: int, *, settle: bool = True) -> Figures:
    with tempfile.TemporaryDirectory(prefix="chaos-kills-") as folder:
        report = await run_kills(kills, seed, Path(folder), settle=settle)
    if not settle:
        report.figures.scenario = "R4' kill as the answer lands"
        report.figures.notes.append(
            "a second kill per round, the moment the recovered answer reaches the chat: "
            "recovery edits the placeholder recorded at the start of the turn (no resend)"
        )
    codes = report.exit_codes
    report.figures.notes.append(
        f"{sum(code == -9 for code in codes)} processes died of SIGKILL; "
        f"the last one exited {codes[-1] if codes else None} on SIGTERM"
    )
    return report.figures


async def _r4_slack(kills: int, seed: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="chaos-slack-kills-") as folder:
        report = await run_slack_kills(kills, seed, Path(folder))
    codes = report.exit_codes
    report.figures.notes.append(
        f"{sum(code == -9 for code in codes)} rounds began with a SIGKILL mid-turn, each "
        "followed by a second as the recovered answer landed; the last process exited "
        f"{codes[-1] if codes else None} on SIGTERM"
    )
    return report.figures


async def _r5_requests() -> Figures:
    report = await run_hostile_requests()
    report.figures.scenario = "R5 hostile requests, big messages"
    return report.figures


async def _r5_streams() -> Figures:
    started = time.monotonic()
    outcomes = await anyio.to_thread.run_sync(run_sse_fuzz, FUZZ_EXAMPLES)
    refused, peak = await oversize_streams(32)
    with tempfile.TemporaryDirectory(prefix="chaos-config-") as folder:
        configs = config_errors(Path(folder))
    events = outcomes.pop("events", 0)
    figures = Figures(
        "R5 fuzzed streams, oversize, config",
        turns=sum(outcomes.values()) + events + len(refused) + len(configs),
        answered=events,
        rejections=sum(outcomes.values()) + len(refused) + len(configs),
        seconds=time.monotonic() - started,
    )
    top = ", ".join(f"{name} {count}" for name, count in outcomes.most_common(6))
    figures.notes.append(f"{FUZZ_EXAMPLES} Hypothesis examples: {events} ran to the end; {top}")
    figures.notes.append(
        f"3 streams of 32 MiB refused ({', '.join(refused)}); peak traced memory "
        f"{peak / 2**20:.1f} MiB (bound {MEMORY_BOUND / 2**20:.0f} MiB)"
    )
    figures.notes.append(f"{len(configs)} malformed configs, each a ConfigError")
    return figures


async def _r7_users() -> Figures:
    return (await run_hostile_users()).figures


async def main(
    turns: int,
    kills: int,
    race_kills: int,
    seed: int,
    redis_url: str | None,
    only: frozenset[str] = frozenset(),
) -> list[Figures]:
    scenarios: list[tuple[str, Callable[[], Awaitable[Figures]]]] = [
        ("R1 upstream faults (telegram)", lambda: _r1(turns, seed)),
        ("R2 platform faults (telegram)", lambda: _r2_telegram(seed)),
        ("R2 platform faults (slack)", lambda: _r2_slack(seed)),
    ]
    if redis_url is not None:
        scenarios.append(("R3 redeliveries across 2 replicas", lambda: _r3(seed, redis_url)))
    scenarios.append(("R4 SIGKILL mid-turn (telegram)", lambda: _r4(kills, seed)))
    if race_kills:
        scenarios.append(
            ("R4' kill as the answer lands", lambda: _r4(race_kills, seed, settle=False))
        )
        scenarios.append(
            ("R4' kill as the answer lands (slack)", lambda: _r4_slack(race_kills, seed))
        )
    scenarios.append(("R5 hostile requests, big messages", _r5_requests))
    scenarios.append(("R5 fuzzed streams, oversize, config", _r5_streams))
    scenarios.append(("R7 hostile users", _r7_users))
    rows = []
    for name, scenario in scenarios:
        if not only or name.split()[0] in only:
            rows.append(await _bounded(name, scenario))
    if redis_url is None and (not only or "R3" in only):
        skipped = Figures("R3 redeliveries across 2 replicas")
        skipped.notes.append("not run: redis-server is not on PATH")
        rows.insert(3, skipped)
    return rows


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000, help="R1 turns (default 1000)")
    parser.add_argument("--kills", type=int, default=100, help="R4 kills (default 100)")
    parser.add_argument(
        "--race-kills",
        type=int,
        default=30,
        help="R4' rounds (Telegram, and again Slack) with a kill as the answer lands "
        "(default 30; 0 skips)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only", nargs="*", default=[], help="run only these rows (R1 R2 R3 R4 R4' R5 R7)"
    )
    parser.add_argument("--log-level", default="CRITICAL", help="bridge logs (default: none)")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    only = frozenset(args.only)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-redis-") as folder:
        if shutil.which("redis-server"):
            with blocking_redis_server(Path(folder)) as url:
                rows = anyio.run(
                    main, args.turns, args.kills, args.race_kills, args.seed, url, only
                )
        else:
            rows = anyio.run(main, args.turns, args.kills, args.race_kills, args.seed, None, only)
    print(
        f"chaos bench: seed {args.seed}, R1 {args.turns} turns, R4 {args.kills} kills, "
        f"{time.monotonic() - started:.0f}s in all"
    )
    print(format_table(rows))


if __name__ == "__main__":
    run()
