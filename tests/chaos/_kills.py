"""R4: `bridge serve` (a real process, Telegram adapter polling the fake Bot API served by
this process) killed with SIGKILL mid-turn, again and again, and restarted on the same
SQLite store: every answer must reach the chat exactly once after the restart.

Each round queues one message (private chats and a group, in turn), waits until the
emulator shows its invoke and the store shows the turn in flight with its task id,
kills the process, starts the next one, and waits for the answer it recovers and for
that delivery to be committed (the turn gone from the ledger).

`run_kills(..., settle=False)` adds a kill just as each recovered answer lands. The Bot
API has no idempotency key, so the bridge sends and records a placeholder at the start of
every turn (private chats too) and the answer, live or recovered, edits it: an edit
repeated after a kill changes nothing, so no answer is sent twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import Process
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.emulator import Emulator
from bridge.render import to_telegram
from bridge.stores import SessionStore, open_store
from bridge.testing import open_emulator
from tests.chaos._kit import TURN_TIMEOUT, Figures, accepted_invokes, poll_until

__all__ = ["KillReport", "Round", "invokes_for", "run_kills"]

USER = FakeUser(8001, "Kim", "kim")
GROUP = -8002
CHATS = (USER.id, GROUP, 8003)
#: How long the slow agent stays silent: the window in which each kill lands.
SILENCE = 1.0


@dataclass
class Round:
    """One kill: the message, where it was asked, and what the chat shows for it."""

    text: str
    chat_id: int
    answer: str = ""
    finals: int = 0
    exit_code: int | None = None


@dataclass
class KillReport:
    figures: Figures
    rounds: list[Round]
    invokes: Counter[str]
    stale_placeholders: int = 0
    exit_codes: list[int | None] = field(default_factory=list)


def served_config(emulator: Emulator, store: str) -> list[str]:
    """The `bridge serve` config lines a kill rig's processes share: the emulator, the store,
    a loopback port of their own, and short leases so that recovery comes soon."""
    return [
        "[upstream]",
        f"base_url = {json.dumps(emulator.base_url)}",
        f"api_key = {json.dumps(emulator.api_key)}",
        "poll_interval = 0.05",
        "poll_interval_max = 0.2",
        "[store]",
        f"url = {json.dumps(store)}",
        "[http]",
        'host = "127.0.0.1"',
        "port = 0",
        "[conversations]",
        "lock_lease = 1.0",
        "recovery_interval = 0.2",
        "[log]",
        'level = "INFO"',
    ]


def _config(path: Path, emulator: Emulator, fake: FakeBotAPI, store: str) -> None:
    lines = [
        *served_config(emulator, store),
        "[adapters.telegram]",
        f"bot_token = {json.dumps(fake.token)}",
        f"api_url = {json.dumps(fake.api_url)}",
        'default_agent = "slow"',
        "poll_timeout = 2",
        "poller_lease = 1.0",
        "",
    ]
    path.write_text("\n".join(lines))


async def _start(config: Path, log: Path) -> Process:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BRIDGE_") and name != "XPANDER_API_KEY"
    }
    with log.open("ab") as sink:
        return await anyio.open_process(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            cwd=config.parent,
            env=env,
        )


async def _in_flight_with_task(store: SessionStore, emulator: Emulator, text: str) -> None:
    """Until the emulator shows the invoke and the store the turn with its task id."""

    async def invoked() -> bool:
        return any(text in _input_text(request.json) for request in emulator.invokes())

    async def recorded() -> bool:
        return any(text in turn.text and turn.task_id for turn in await store.list_turns())

    await poll_until(invoked)
    await poll_until(recorded)


async def _delivered(store: SessionStore, text: str) -> None:
    """Until the turn has left the in-flight ledger (its delivery is committed)."""

    async def committed() -> bool:
        return not any(text in turn.text for turn in await store.list_turns())

    await poll_until(committed)


def _input_text(body: object) -> str:
    return str((body.get("input") or {}).get("text")) if isinstance(body, dict) else ""


async def _answer(emulator: Emulator, text: str) -> str:
    """The final text the chat must show for `text` (waits for the task to complete)."""
    while True:
        for task in list(emulator.tasks.values()):
            if any(text in turn.text for turn in task.turns):
                record = await emulator.wait_for_status(task.id, "completed")
                return to_telegram(record.to_json()["result"])[0].text
        await anyio.sleep(0.01)


def _question(fake: FakeBotAPI, round_: Round) -> None:
    chat_id = round_.chat_id
    text = f"@{fake.username} {round_.text}" if chat_id < 0 else round_.text
    fake.queue(USER.says(fake, chat_id, text))


async def run_kills(kills: int, seed: int, workdir: Path, *, settle: bool = True) -> KillReport:
    """`kills` rounds of ask, kill -9 mid-turn, restart; then count what the chats show.

    With `settle=False` each round also kills the process the moment the recovered answer
    reaches the chat, and restarts it: the answer must still land exactly once."""
    started = time.monotonic()
    store_url = f"sqlite:///{workdir / 'state.db'}"
    config, log = workdir / "bridge.toml", workdir / "bridge.log"
    rounds = [Round(f"kill {seed} round {n:04d}", CHATS[n % len(CHATS)]) for n in range(kills)]
    report = KillReport(Figures("R4 SIGKILL mid-turn (telegram)"), rounds, Counter())
    async with (
        open_emulator(slow_silence=SILENCE, seed=seed) as emulator,
        open_fake_bot_api() as fake,
    ):
        fake.chat(GROUP, "supergroup", title="Kills")
        _config(config, emulator, fake, store_url)
        store = open_store(store_url)
        process = await _start(config, log)
        try:
            await store.open()
            for round_ in rounds:
                process = await _kill_and_restart(
                    process, round_, emulator, fake, store, config, log, settle=settle
                )
                report.exit_codes.append(round_.exit_code)
        finally:
            with anyio.CancelScope(shield=True):
                process.terminate()
                with anyio.move_on_after(15):
                    report.exit_codes.append(await process.wait())
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.aclose()
                await store.close()
        report.invokes = accepted_invokes(emulator)
        _count(report, fake)
    report.figures.seconds = time.monotonic() - started
    return report


async def _kill_and_restart(
    process: Process,
    round_: Round,
    emulator: Emulator,
    fake: FakeBotAPI,
    store: SessionStore,
    config: Path,
    log: Path,
    *,
    settle: bool,
) -> Process:
    _question(fake, round_)
    with anyio.fail_after(TURN_TIMEOUT):
        await _in_flight_with_task(store, emulator, round_.text)
    process.kill()
    round_.exit_code = await process.wait()
    await process.aclose()
    process = await _start(config, log)
    with anyio.move_on_after(TURN_TIMEOUT):
        round_.answer = await _answer(emulator, round_.text)
        await fake.wait_for(lambda: any(m.text == round_.answer for m in fake.sent(round_.chat_id)))
        if not settle:
            # Kill again the moment the recovered answer reaches the chat: before the
            # bridge has its reply from the Bot API, or has recorded the delivery.
            process.kill()
            await process.wait()
            await process.aclose()
            process = await _start(config, log)
        # The next kill must land mid-turn, not while this answer's delivery is still
        # being committed (a kill there sends it again: see the module docstring).
        await _delivered(store, round_.text)
    return process


def invokes_for(report: KillReport, round_: Round) -> int:
    """Accepted invokes whose text carries the round's message (groups add the mention;
    round numbers have a fixed width, so no round's text is part of another's)."""
    return sum(count for text, count in report.invokes.items() if round_.text in text)


def _count(report: KillReport, fake: FakeBotAPI) -> None:
    figures = report.figures
    answers = {r.answer for r in report.rounds}
    for round_ in report.rounds:
        round_.finals = sum(m.text == round_.answer for m in fake.sent(round_.chat_id))
    figures.turns = len(report.rounds)
    figures.answered = sum(r.finals >= 1 for r in report.rounds)
    figures.lost = sum(r.finals == 0 for r in report.rounds)
    figures.duplicates = sum(max(0, r.finals - 1) for r in report.rounds)
    figures.duplicates += sum(max(0, invokes_for(report, r) - 1) for r in report.rounds)
    figures.rejections = 0
    others = Counter(m.text for m in fake.messages.values() if m.text not in answers)
    report.stale_placeholders = sum(others.values())
    if others:
        shown = ", ".join(f"{count} x {text[:30]!r}" for text, count in others.most_common(3))
        figures.notes.append(f"messages that are no answer (placeholders left behind): {shown}")
