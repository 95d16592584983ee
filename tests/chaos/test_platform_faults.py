"""R2 at CI size: Telegram 429/5xx and Slack 429/`ok:false ratelimited`/5xx on the answer
path lose and repeat nothing, and every wait is honoured; plus the three failures the
seeded runs found, each pinned by a deterministic case."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from bridge_telegram.testing import FakeBotAPI, FakeUser

from bridge.render import to_telegram
from tests.chaos._kit import TURN_TIMEOUT, telegram_rig
from tests.chaos._platform import (
    PlatformReport,
    run_slack_platform_faults,
    run_telegram_platform_faults,
)
from tests.chaos._upstream import final_messages

SEED = 20260602
USER = FakeUser(7300, "Pat")


@pytest.fixture(scope="module")
async def reports() -> AsyncIterator[dict[str, PlatformReport]]:
    yield {
        "telegram": await run_telegram_platform_faults(16, SEED),
        "slack": await run_slack_platform_faults(6, SEED),
    }


@pytest.mark.parametrize("platform", ["telegram", "slack"])
async def test_each_message_gets_exactly_one_final_answer_through_platform_faults(
    platform: str, reports: dict[str, PlatformReport]
) -> None:
    report = reports[platform]
    assert report.faults_hit >= 6
    assert set(report.finals.values()) == {1}
    assert report.others == 0
    assert set(report.invokes.values()) == {1}
    assert report.settled


@pytest.mark.parametrize("platform", ["telegram", "slack"])
async def test_every_rate_limit_wait_is_honoured_before_the_next_call(
    platform: str, reports: dict[str, PlatformReport]
) -> None:
    report = reports[platform]
    honoured, seen = report.figures.waits
    assert seen >= 2
    assert honoured == seen


async def test_slack_faults_reach_every_method_of_the_answer_path(
    reports: dict[str, PlatformReport],
) -> None:
    methods = {failure.split()[0] for failure in reports["slack"].failed_calls}
    assert methods >= {
        "assistant.threads.setStatus",
        "chat.startStream",
        "chat.postMessage",
        "chat.update",
    }
    # Which open streams the continuation faults meet depends on timing; some do.
    assert methods & {"chat.appendStream", "chat.stopStream"}


async def _answered(fake: FakeBotAPI, text: str) -> None:
    answer = to_telegram(text)[0].text
    with anyio.fail_after(TURN_TIMEOUT):
        await fake.wait_for(lambda: any(m.text == answer for m in final_messages(fake, USER.id)))


async def test_a_failed_queued_notice_does_not_lose_the_message_it_announces() -> None:
    async with telegram_rig("slow", slow_silence=1.0) as rig:
        fake = rig.fake
        fake.queue(USER.says(fake, USER.id, "first"))
        with anyio.fail_after(TURN_TIMEOUT):
            await fake.wait_for(lambda: fake.drafts)
        # The next sendMessage is the "I'll answer after the current reply" notice.
        rig.front.fail_next("sendMessage", 502)
        fake.queue(USER.says(fake, USER.id, "second"))
        for text in ("Sorry for the wait. Done: first", "Sorry for the wait. Done: second"):
            await _answered(fake, text)
    texts = [m.text for m in final_messages(fake, USER.id)]
    assert texts == ["Sorry for the wait. Done: first", "Sorry for the wait. Done: second"]
    # The first sendMessage is the first turn's placeholder; the second is the notice.
    assert [e.status for e in rig.front.exchanges if e.method == "sendMessage"][1] == 502


async def test_a_platform_error_while_recovery_delivers_leaves_the_turn_for_the_next_pass() -> None:
    async with telegram_rig("echo") as rig:
        fake = rig.fake
        # The live answer fails, then recovery's first delivery fails too.
        rig.front.fail_next("sendMessage", 502)
        rig.front.fail_next("sendMessage", 503)
        fake.queue(USER.says(fake, USER.id, "delivered at last"))
        await _answered(fake, "delivered at last")
        fake.queue(USER.says(fake, USER.id, "still serving"))
        await _answered(fake, "still serving")
        assert rig.runtime.started == {"telegram": True}
    statuses = [e.status for e in rig.front.exchanges if e.method == "sendMessage"]
    assert statuses == [502, 503, 200, 200]
    assert [m.text for m in final_messages(fake, USER.id)] == ["delivered at last", "still serving"]


async def test_a_flood_wait_on_the_message_drawn_after_drafts_fail_pauses_the_chat() -> None:
    async with telegram_rig("writer") as rig:
        fake, emulator = rig.fake, rig.emulator
        # Drafts fail (the view falls back to a message), and that message gets 429.
        rig.front.fail_next("sendMessageDraft", 503)
        fake.fail_next("sendMessage", retry_after=2)
        fake.queue(USER.says(fake, USER.id, "chars=200 chunks=4 seconds=1"))
        with anyio.fail_after(TURN_TIMEOUT):
            [task] = await fake.wait_for(
                lambda: [t for t in emulator.tasks.values() if t.status == "completed"]
            )
            answer = to_telegram(task.to_json()["result"])[0].text
            await fake.wait_for(lambda: any(m.text == answer for m in fake.sent(USER.id)))
    limited = [e for e in rig.front.exchanges if e.status == 429]
    assert [e.method for e in limited] == ["sendMessage"]
    assert rig.front.rate_limits() == (1, 1)
