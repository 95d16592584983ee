"""What every chaos scenario shares: a bridge serving the fakes, the figures a scenario
reports, and the checks behind them (waits honoured, accepted invokes per message, a
bridge with nothing left in flight)."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from bridge_telegram import TelegramAdapter, TelegramConfig
from bridge_telegram.testing import FakeBotAPI, open_fake_bot_api
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.adapters import Adapter
from bridge.config import Settings, load_settings
from bridge.emulator import Emulator, Fault
from bridge.http import HttpApp
from bridge.runtime import Runtime, serve
from bridge.stores import SessionStore
from bridge.testing import open_emulator

__all__ = [
    "FAST_UPSTREAM",
    "TURN_TIMEOUT",
    "BotApiFront",
    "Exchange",
    "Figures",
    "TelegramRig",
    "accepted_invokes",
    "bridge_settings",
    "format_table",
    "open_bot_api_front",
    "poll_until",
    "running",
    "seeded",
    "settle",
    "started_turns",
    "telegram_adapter",
    "telegram_rig",
    "upstream_waits",
    "waits_honoured",
]

#: Upstream patience for chaos runs: stalls become polling after 0.3 s, retries come fast.
FAST_UPSTREAM: dict[str, Any] = {
    "idle_timeout": 0.3,
    "poll_interval": 0.02,
    "poll_interval_max": 0.1,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "max_attempts": 4,
}
#: How long one message may take to be answered before it counts as lost.
TURN_TIMEOUT = 30.0
#: Seconds a platform call may come early after a rate-limit answer (clock granularity).
WAIT_TOLERANCE = 0.05


@dataclass
class Figures:
    """What one scenario run shows, side by side with the others in `format_table`."""

    scenario: str
    turns: int = 0
    answered: int = 0
    duplicates: int = 0
    lost: int = 0
    waits: tuple[int, int] = (0, 0)
    """Rate-limit answers whose wait was honoured, of those followed by another call."""
    rejections: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def format_table(rows: Sequence[Figures]) -> str:
    """The figures of several scenarios as one fixed-width table (notes below it)."""
    head = (
        f"{'scenario':<36} {'turns':>6} {'answered':>8} {'dupes':>6} {'lost':>5} "
        f"{'waits honoured':>14} {'rejections':>10} {'seconds':>8}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        honoured, seen = row.waits
        lines.append(
            f"{row.scenario:<36} {row.turns:>6} {row.answered:>8} {row.duplicates:>6} "
            f"{row.lost:>5} {f'{honoured}/{seen}':>14} {row.rejections:>10} {row.seconds:>8.1f}"
        )
    notes = [f"  {row.scenario}: {note}" for row in rows for note in row.notes]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def bridge_settings(
    emulator: Emulator,
    *,
    store: str = "memory://",
    upstream: dict[str, Any] | None = None,
    conversations: dict[str, Any] | None = None,
) -> Settings:
    """Settings for a bridge on the emulator, its HTTP server on 127.0.0.1:0."""
    return load_settings(
        overrides={
            "upstream": {
                "base_url": emulator.base_url,
                "api_key": emulator.api_key,
                **(upstream or {}),
            },
            "store": {"url": store},
            "conversations": {"recovery_interval": 0.2, **(conversations or {})},
            "http": {"host": "127.0.0.1", "port": 0},
            "log": {"level": "WARNING"},
        },
        environ={},
    )


@asynccontextmanager
async def running(settings: Settings, adapters: list[Adapter]) -> AsyncIterator[Runtime]:
    """`bridge serve` with these adapters until the block exits."""
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(partial(serve, settings, adapters=adapters))
        try:
            yield runtime
        finally:
            group.cancel_scope.cancel()


def telegram_adapter(token: str, api_url: str, **table: Any) -> TelegramAdapter:
    """A Telegram adapter on a (fake) Bot API server."""
    return TelegramAdapter(
        TelegramConfig.model_validate(
            {"bot_token": token, "api_url": api_url, "poll_timeout": 2, **table}
        )
    )


@dataclass(frozen=True)
class Exchange:
    """One platform call as the platform answered it: where it went, when (monotonic
    seconds), and the wait a rate-limit answer asked for."""

    destination: Hashable
    at: float
    retry_after: float | None = None


def waits_honoured(
    exchanges: Iterable[Exchange], tolerance: float = WAIT_TOLERANCE
) -> tuple[int, int]:
    """(honoured, seen): of the rate-limit answers followed by another call to the same
    destination, how many saw that call come no sooner than `retry_after` later."""
    by_destination: dict[Hashable, list[Exchange]] = defaultdict(list)
    for exchange in exchanges:
        by_destination[exchange.destination].append(exchange)
    honoured = seen = 0
    for calls in by_destination.values():
        calls.sort(key=lambda call: call.at)
        for limited, following in itertools.pairwise(calls):
            if limited.retry_after is None:
                continue
            seen += 1
            honoured += following.at >= limited.at + limited.retry_after - tolerance
    return honoured, seen


def accepted_invokes(emulator: Emulator) -> Counter[str]:
    """Invoke requests the emulator accepted (answered 200), per input text."""
    counts: Counter[str] = Counter()
    for request in emulator.invokes():
        if request.status == 200 and isinstance(request.json, dict):
            counts[str((request.json.get("input") or {}).get("text"))] += 1
    return counts


def started_turns(emulator: Emulator) -> Counter[str]:
    """Turns the emulator started, per input text, however their invoke was answered
    (a fault may fail the response of an invoke whose turn it created)."""
    return Counter(turn.text for record in emulator.tasks.values() for turn in record.turns)


def upstream_waits(emulator: Emulator, tolerance: float = WAIT_TOLERANCE) -> tuple[int, int]:
    """`waits_honoured` for the client's invokes: per agent, after a refusal that carried
    `Retry-After`, the next invoke came no sooner."""
    exchanges = []
    for request in emulator.invokes():
        fault = Fault.parse(request.fault) if request.fault else None
        wait = fault.retry_after if fault is not None and fault.kind == "status" else None
        exchanges.append(Exchange(request.agent_id, request.time, wait))
    return waits_honoured(exchanges, tolerance)


async def settle(store: SessionStore, emulator: Emulator, within: float = TURN_TIMEOUT) -> bool:
    """Whether, within `within` seconds, no turn was left in flight (nothing for recovery
    to deliver) and the emulator ran no turn."""
    with anyio.move_on_after(within):
        await _quiet(store, emulator)
        return True
    return False


async def _quiet(store: SessionStore, emulator: Emulator) -> None:
    async def quiet() -> bool:
        return not await store.list_turns() and not emulator.stats()["running_turns"]

    await poll_until(quiet)


async def poll_until(condition: Callable[[], Awaitable[bool]], interval: float = 0.01) -> None:
    """Return once `condition()` holds; bound it yourself. Only for state that offers no
    event to wait on (a store seen from another process, the emulator's request log)."""
    while True:
        if await condition():
            return
        await anyio.sleep(interval)


@dataclass(frozen=True)
class BotExchange:
    """One Bot API call seen by `BotApiFront`."""

    method: str
    chat_id: str | None
    at: float
    status: int
    retry_after: float | None


class BotApiFront:
    """A front for the fake Bot API that records every exchange with the wait it asked
    for, and answers 5xx to chosen methods (the fake itself only answers 429).

    Point the adapter at `api_url`; calls not failed here go to the fake unchanged.
    """

    def __init__(self, fake: FakeBotAPI) -> None:
        self.fake = fake
        self.exchanges: list[BotExchange] = []
        self._failures: dict[str, list[int]] = defaultdict(list)
        self.http = HttpApp()
        self.http.add_route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])
        self.http.add_route("/file/bot{token}/{path:path}", fake.file_endpoint)

    @property
    def api_url(self) -> str:
        return self.http.base_url

    def fail_next(self, method: str, status: int = 502) -> None:
        """Answer the next call of `method` with `status`, before the fake sees it."""
        self._failures[method].append(status)

    def rate_limits(self, tolerance: float = WAIT_TOLERANCE) -> tuple[int, int]:
        """`waits_honoured` per chat, drafts apart from messages (the adapter's budgets)."""
        return waits_honoured(
            (
                Exchange(
                    (e.chat_id, "draft" if e.method == "sendMessageDraft" else "message"),
                    e.at,
                    e.retry_after,
                )
                for e in self.exchanges
                if e.chat_id is not None
            ),
            tolerance,
        )

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        at = anyio.current_time()
        chat = await _chat_id(request)
        failures = self._failures.get(method)
        if failures:
            status = failures.pop(0)
            self.exchanges.append(BotExchange(method, chat, at, status, None))
            body = {"ok": False, "error_code": status, "description": "Bad Gateway"}
            return JSONResponse(body, status)
        response = await self.fake.endpoint(request)
        retry_after = None
        if response.status_code == 429:
            retry_after = float(json.loads(bytes(response.body))["parameters"]["retry_after"])
        self.exchanges.append(BotExchange(method, chat, at, response.status_code, retry_after))
        return response


@asynccontextmanager
async def open_bot_api_front(fake: FakeBotAPI) -> AsyncIterator[BotApiFront]:
    """Serve a `BotApiFront` for `fake` on 127.0.0.1:0 until the block exits."""
    front = BotApiFront(fake)
    async with anyio.create_task_group() as group:
        await group.start(front.http.serve, "127.0.0.1", 0)
        try:
            yield front
        finally:
            group.cancel_scope.cancel()


@dataclass
class TelegramRig:
    """A bridge serving only Telegram (polling), through a `BotApiFront` to the fake."""

    emulator: Emulator
    fake: FakeBotAPI
    front: BotApiFront
    runtime: Runtime


@asynccontextmanager
async def telegram_rig(
    agent: str, *, upstream: dict[str, Any] | None = None, **emulator_options: Any
) -> AsyncIterator[TelegramRig]:
    """Emulator, fake Bot API, its front, and a bridge answering with `agent`."""
    async with (
        open_emulator(**emulator_options) as emulator,
        open_fake_bot_api() as fake,
        open_bot_api_front(fake) as front,
    ):
        adapter = telegram_adapter(fake.token, front.api_url, default_agent=agent)
        settings = bridge_settings(emulator, upstream=upstream)
        async with running(settings, [adapter]) as runtime:
            yield TelegramRig(emulator, fake, front, runtime)


async def _chat_id(request: Request) -> str | None:
    """`chat_id` of a Bot API call (the body is cached, so the fake can read it again)."""
    if request.method != "POST":
        return request.query_params.get("chat_id")
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        value = body.get("chat_id") if isinstance(body, dict) else None
    else:
        value = (await request.form()).get("chat_id")
    return None if value is None else str(value)


def seeded(seed: int, scenario: str) -> random.Random:
    """A random generator for one scenario of one run: same seed, same choices."""
    return random.Random(f"{seed}:{scenario}")
