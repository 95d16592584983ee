"""R1: turns through the Telegram adapter (private chats, polling) while the upstream cuts,
stalls, garbles and refuses streams, chosen per turn from a seed.

Every message must get exactly one final message: its answer, or, where the platform
refused every try (503 past `max_attempts`), one clear error. An invoke that fails without
saying whether the turn started (a 500 or 502, a cut before `task_created`, a connection
reset before any response, each before or after the platform created the turn) is checked
with the platform, then followed or sent again. No message may start two upstream turns,
and every `Retry-After` the upstream sent must be waited out before the invoke is sent again.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Literal

import anyio
from bridge_telegram.testing import FakeBotAPI, FakeUser, SentMessage, open_fake_bot_api

from bridge.emulator import Emulator, Fault
from bridge.render import to_telegram
from bridge.testing import open_emulator
from tests.chaos._kit import (
    FAST_UPSTREAM,
    TURN_TIMEOUT,
    Figures,
    bridge_settings,
    running,
    seeded,
    settle,
    started_turns,
    telegram_adapter,
    upstream_waits,
)

__all__ = [
    "KINDS",
    "Plan",
    "TurnOutcome",
    "UpstreamReport",
    "final_messages",
    "plan_turn",
    "plan_turns",
    "run_upstream_chaos",
]

Outcome = Literal["answered", "error", "lost"]

_INVOKE = "/invoke"
#: How the adapter's "I'll answer this after the current reply" notice starts.
QUEUED_NOTICE = "⏳"
_GARBAGE = (
    "data: {this is not json\n\n",
    'data: {"type": "chunk"}\n\n',
    'data: {"type": "chunk", "data": 42}\n\n',
    'data: {"type": "task_finished", "data": {"id": 7}}\n\n',
    'event: chunk\ndata: ["unclosed"\n\n',
    "data: \u0000\ufffd\U0001f600\n\n",
    "retry: x\nid: \u0000\n: just a comment\n\n",
)


@dataclass(frozen=True)
class Plan:
    """The faults one turn meets upstream, and what the design promises for it."""

    label: str
    faults: tuple[Fault, ...] = ()
    answered: bool = True
    """An answer is promised; otherwise one rendered error (the design refuses to retry)."""


@dataclass(frozen=True)
class TurnOutcome:
    plan: Plan
    chat_id: int
    text: str
    outcome: Outcome

    @property
    def as_promised(self) -> bool:
        return self.outcome == ("answered" if self.plan.answered else "error")


@dataclass
class UpstreamReport:
    figures: Figures
    turns: list[TurnOutcome]
    invokes: Counter[str]
    settled: bool


def _status(status: int, retry_after: float | None = None, times: int = 1) -> Fault:
    return Fault("status", status=status, retry_after=retry_after, path=_INVOKE, times=times)


KINDS = (
    "clean",
    "drop",
    "stall",
    "garbage",
    "429",
    "503",
    "503+drop",
    "429+stall",
    "500",
    "cut-before-created",
    "503-exhausted",
    "500-after-create",
    "502",
    "reset",
    "reset-after-create",
)
_WEIGHTS = (18, 15, 10, 10, 12, 10, 5, 5, 6, 4, 3, 4, 2, 3, 3)


def plan_turns(rng: random.Random, turns: int) -> list[Plan]:
    """Every fault kind once (when there are enough turns), the rest drawn by weight."""
    kinds = list(KINDS[:turns]) + rng.choices(KINDS, weights=_WEIGHTS, k=max(0, turns - len(KINDS)))
    rng.shuffle(kinds)
    return [plan_turn(rng, kind) for kind in kinds]


def plan_turn(rng: random.Random, kind: str) -> Plan:
    """The faults of one turn of `kind`, their details drawn from `rng`."""
    after = rng.randint(1, 5)
    wait = rng.choice((0.05, 0.1, 0.2, 0.3))
    drop = Fault("drop", after=after)
    stall = Fault("stall", after=min(after, 4), seconds=1.0)
    if kind == "clean":
        return Plan(kind)
    if kind == "drop":
        return Plan(kind, (drop,))
    if kind == "stall":
        return Plan(kind, (stall,))
    if kind == "garbage":
        return Plan(kind, (Fault("garbage", after=after - 1, garbage=rng.choice(_GARBAGE)),))
    if kind == "429":
        return Plan(kind, (_status(429, wait, times=rng.randint(1, 2)),))
    if kind == "503":
        return Plan(kind, (_status(503, rng.choice((None, wait)), times=rng.randint(1, 2)),))
    if kind == "503+drop":
        return Plan(kind, (_status(503, wait), drop))
    if kind == "429+stall":
        return Plan(kind, (_status(429, wait), stall))
    if kind in ("500", "502"):
        return Plan(kind, (_status(int(kind)),))
    if kind == "500-after-create":
        return Plan(kind, (replace(_status(500), create=True),))
    if kind == "cut-before-created":
        return Plan(kind, (Fault("drop", after=0),))
    if kind in ("reset", "reset-after-create"):
        return Plan(kind, (Fault("reset", create=kind != "reset", path=_INVOKE),))
    return Plan(kind, (_status(503, 0.05, times=int(FAST_UPSTREAM["max_attempts"])),), False)


def final_messages(fake: FakeBotAPI, chat_id: int) -> list[SentMessage]:
    """The bot's messages in a chat but for "I'll answer after the current reply" notices:
    a message sent while the previous turn still held the conversation is not an answer."""
    return [m for m in fake.sent(chat_id) if not m.text.startswith(QUEUED_NOTICE)]


async def _turn(
    emulator: Emulator, fake: FakeBotAPI, user: FakeUser, agent: str, text: str, plan: Plan
) -> Outcome:
    for fault in plan.faults:
        emulator.inject(replace(fault, agent=agent))
    chat_id = user.id
    before = len(final_messages(fake, chat_id))
    fake.queue(user.says(fake, chat_id, text))

    def arrived() -> SentMessage | None:
        return next(iter(final_messages(fake, chat_id)[before:]), None)

    message: SentMessage | None = None
    with anyio.move_on_after(TURN_TIMEOUT):
        message = await fake.wait_for(arrived)
    if message is None:
        return "lost"
    return "answered" if message.text == to_telegram(text)[0].text else "error"


async def run_upstream_chaos(turns: int, seed: int, *, chats: int | None = None) -> UpstreamReport:
    """Run `turns` messages over `chats` private chats (one conversation each, one message
    at a time; the chats run concurrently), each meeting the faults `plan_turn` drew."""
    rng = seeded(seed, "upstream")
    chats = chats or max(1, min(50, turns // 5))
    plans = plan_turns(rng, turns)
    agents = [f"chaos-{index}" for index in range(chats)]
    outcomes: list[TurnOutcome] = []
    started = time.monotonic()
    async with (
        open_emulator(extra_agents=agents, seed=seed) as emulator,
        open_fake_bot_api() as fake,
    ):
        settings = bridge_settings(emulator, upstream=FAST_UPSTREAM)
        routes = {str(7000 + index): {"agent": agent} for index, agent in enumerate(agents)}
        adapter = telegram_adapter(fake.token, fake.api_url, routes=routes)
        async with running(settings, [adapter]) as runtime:

            async def converse(index: int) -> None:
                user = FakeUser(7000 + index, f"Chaos{index}")
                for number in range(index, turns, chats):
                    text = f"chaos {seed} c{index} t{number}"
                    plan = plans[number]
                    outcome = await _turn(emulator, fake, user, agents[index], text, plan)
                    outcomes.append(TurnOutcome(plan, user.id, text, outcome))

            async with anyio.create_task_group() as group:
                for index in range(chats):
                    group.start_soon(converse, index)
            settled = await settle(runtime.store, emulator)
        invokes = started_turns(emulator)
        figures = _figures(outcomes, invokes, fake, chats)
        figures.waits = upstream_waits(emulator)
    figures.seconds = time.monotonic() - started
    if not settled:
        figures.notes.append("turns still in flight at the end")
    notices = sum(m.text.startswith(QUEUED_NOTICE) for m in fake.messages.values())
    if notices:
        figures.notes.append(f"{notices} 'answer after the current reply' notices")
    labels = Counter(outcome.plan.label for outcome in outcomes)
    figures.notes.append("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    return UpstreamReport(figures, outcomes, invokes, settled)


def _figures(
    outcomes: list[TurnOutcome], invokes: Counter[str], fake: FakeBotAPI, chats: int
) -> Figures:
    delivered = Counter(o.chat_id for o in outcomes if o.outcome != "lost")
    extra = sum(
        max(0, len(final_messages(fake, 7000 + index)) - delivered[7000 + index])
        for index in range(chats)
    )
    extra += sum(max(0, invokes[o.text] - 1) for o in outcomes)
    return Figures(
        "R1 upstream faults (telegram)",
        turns=len(outcomes),
        answered=sum(o.outcome == "answered" for o in outcomes),
        duplicates=extra,
        lost=sum(o.outcome == "lost" or (o.plan.answered and not o.as_promised) for o in outcomes),
        rejections=sum(o.outcome == "error" and not o.plan.answered for o in outcomes),
    )
