"""R4' on Slack: `bridge serve` (Socket Mode, on the fake Slack served by this process)
killed with SIGKILL mid-turn, restarted on the same SQLite store, and killed again the
moment each recovered answer lands in the thread; restarted again, it must leave every
answer exactly once and no placeholder or stream unfinished.

The answer's message exists before the turn goes on: a placeholder posted with a tag
(recovery finds it by that tag even if it was never recorded) or a stream started empty
and recorded. Recovery stops a recorded stream and edits the message: an edit repeated
after a kill changes nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import anyio
from anyio.abc import Process
from bridge_slack.testing import FakeSlack, event_callback, open_fake_slack

from bridge.emulator import Emulator
from bridge.stores import SessionStore, open_store
from bridge.testing import open_emulator
from tests.chaos._kills import (
    SILENCE,
    KillReport,
    Round,
    _delivered,
    _in_flight_with_task,
    _start,
    served_config,
)
from tests.chaos._kit import TURN_TIMEOUT, Figures, accepted_invokes

__all__ = ["run_slack_kills"]

CHANNEL = "C1"


def _config(
    path: Path, emulator: Emulator, fake: FakeSlack, store: str, *, streaming: bool
) -> None:
    def q(value: str) -> str:
        return json.dumps(value)

    lines = [
        *served_config(emulator, store),
        "[adapters.slack]",
        'mode = "socket"',
        f"bot_token = {q(fake.bot_token)}",
        f"app_token = {q(fake.app_token)}",
        f"api_url = {q(fake.api_url)}",
        'default_agent = "slow"',
        f"streaming = {str(streaming).lower()}",
        "",
    ]
    path.write_text("\n".join(lines))


def _root(round_number: int) -> str:
    return f"1700002000.{round_number:06d}"


async def _answer(emulator: Emulator, text: str) -> str:
    """The final text the thread must show for `text` (waits for the task to complete)."""
    while True:
        for task in list(emulator.tasks.values()):
            if any(text in turn.text for turn in task.turns):
                record = await emulator.wait_for_status(task.id, "completed")
                return str(record.to_json()["result"])
        await anyio.sleep(0.01)


def _finals(fake: FakeSlack, root: str, answer: str) -> int:
    return sum(m.visible_text == answer and not m.streaming for m in fake.replies(CHANNEL, root))


class _Bridge:
    """The one `bridge serve` process of the run, killed and restarted."""

    def __init__(self, config: Path, log: Path, fake: FakeSlack) -> None:
        self.config, self.log, self.fake = config, log, fake
        self.starts = 0
        self.process: Process | None = None

    async def start(self) -> None:
        self.process = await _start(self.config, self.log)
        self.starts += 1

    async def kill(self) -> int | None:
        assert self.process is not None
        self.process.kill()
        code = await self.process.wait()
        await self.process.aclose()
        return code

    async def connected(self) -> None:
        """Until the running process holds a Socket Mode connection."""
        await self.fake.wait_for(lambda: self.fake.connections >= self.starts)

    async def stop(self, codes: list[int | None]) -> None:
        process = self.process
        if process is None:
            return
        with anyio.move_on_after(TURN_TIMEOUT):
            await self.connected()  # a process still starting has no SIGTERM handler yet
        process.terminate()
        with anyio.move_on_after(15):
            codes.append(await process.wait())
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()


async def _round(
    bridge: _Bridge, n: int, round_: Round, emulator: Emulator, store: SessionStore
) -> None:
    fake = bridge.fake
    with anyio.fail_after(TURN_TIMEOUT):
        await bridge.connected()
        event = {"type": "app_mention", "channel": CHANNEL, "user": "U1", "ts": _root(n)}
        await fake.send_envelope(
            "events_api", event_callback({**event, "text": f"<@UBOT> {round_.text}"})
        )
        await _in_flight_with_task(store, emulator, round_.text)
    round_.exit_code = await bridge.kill()
    await bridge.start()
    with anyio.move_on_after(TURN_TIMEOUT):
        round_.answer = await _answer(emulator, round_.text)
        await fake.wait_for(lambda: _finals(fake, _root(n), round_.answer))
        # Again the moment the recovered answer is in the thread: before the bridge has
        # Slack's reply, or has recorded the delivery.
        await bridge.kill()
        await bridge.start()
        await _delivered(store, round_.text)


async def run_slack_kills(
    kills: int, seed: int, workdir: Path, *, streaming: bool = True
) -> KillReport:
    """`kills` rounds of ask, kill -9 mid-turn, restart, kill -9 as the recovered answer
    lands, restart; then count what the thread shows."""
    started = time.monotonic()
    store_url = f"sqlite:///{workdir / 'state.db'}"
    config, log = workdir / "bridge.toml", workdir / "bridge.log"
    rounds = [Round(f"kill {seed} slack {n:04d}", 0) for n in range(kills)]
    report = KillReport(Figures("R4' kill as the answer lands (slack)"), rounds, Counter())
    async with (
        open_emulator(slow_silence=SILENCE, seed=seed) as emulator,
        open_fake_slack() as fake,
    ):
        _config(config, emulator, fake, store_url, streaming=streaming)
        store = open_store(store_url)
        bridge = _Bridge(config, log, fake)
        await bridge.start()
        try:
            await store.open()
            for n, round_ in enumerate(rounds):
                await _round(bridge, n, round_, emulator, store)
                report.exit_codes.append(round_.exit_code)
        finally:
            with anyio.CancelScope(shield=True):
                await bridge.stop(report.exit_codes)
                await store.close()
        report.invokes = accepted_invokes(emulator)
        _count(report, fake)
    report.figures.seconds = time.monotonic() - started
    return report


def _count(report: KillReport, fake: FakeSlack) -> None:
    figures = report.figures
    stale: Counter[str] = Counter()
    for n, round_ in enumerate(report.rounds):
        round_.finals = _finals(fake, _root(n), round_.answer)
        for message in fake.replies(CHANNEL, _root(n)):
            if message.streaming:
                stale["an open stream"] += 1
            elif message.visible_text != round_.answer:
                stale[message.visible_text[:30]] += 1
    figures.turns = len(report.rounds)
    figures.answered = sum(r.finals >= 1 for r in report.rounds)
    figures.lost = sum(r.finals == 0 for r in report.rounds)
    figures.duplicates = sum(max(0, r.finals - 1) for r in report.rounds)
    figures.duplicates += sum(
        max(0, sum(c for t, c in report.invokes.items() if r.text in t) - 1) for r in report.rounds
    )
    report.stale_placeholders = sum(stale.values())
    figures.notes.append(
        f"{report.stale_placeholders} placeholders or streams left unfinished"
        + (": " + ", ".join(f"{c} x {t!r}" for t, c in stale.most_common(3)) if stale else "")
    )
