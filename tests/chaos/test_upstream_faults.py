"""R1 at CI size: 40 Telegram turns against seeded upstream cuts, stalls, garbage,
429/503 refusals, 500s and resets (before and after the turn was created); one run,
several promises checked on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from bridge_telegram.testing import FakeUser

from bridge.emulator import Fault
from tests.chaos._kit import FAST_UPSTREAM, TURN_TIMEOUT, poll_until, telegram_rig
from tests.chaos._upstream import KINDS, UpstreamReport, final_messages, run_upstream_chaos

SEED = 20260601
TURNS = 40


@pytest.fixture(scope="module")
async def report() -> AsyncIterator[UpstreamReport]:
    yield await run_upstream_chaos(TURNS, SEED)


async def test_the_seeded_run_meets_every_fault_kind(report: UpstreamReport) -> None:
    assert len(report.turns) == TURNS
    assert {outcome.plan.label for outcome in report.turns} == set(KINDS)


async def test_every_message_gets_its_answer_or_the_error_the_design_promises(
    report: UpstreamReport,
) -> None:
    broken = [(o.plan.label, o.text, o.outcome) for o in report.turns if not o.as_promised]
    assert broken == []
    assert report.figures.lost == 0


async def test_invokes_the_platform_refused_every_time_are_rendered_as_one_error_not_lost(
    report: UpstreamReport,
) -> None:
    refused = [o for o in report.turns if not o.plan.answered]
    assert {o.plan.label for o in refused} == {"503-exhausted"}
    assert {o.outcome for o in refused} == {"error"}
    assert report.figures.rejections == len(refused)


async def test_invokes_that_failed_without_saying_whether_the_turn_started_are_answered(
    report: UpstreamReport,
) -> None:
    ambiguous = {"500", "502", "500-after-create", "cut-before-created", "reset"}
    ambiguous.add("reset-after-create")
    outcomes = [o for o in report.turns if o.plan.label in ambiguous]
    assert {o.plan.label for o in outcomes} == ambiguous
    assert {o.outcome for o in outcomes} == {"answered"}


async def test_no_message_gets_a_second_final_message(report: UpstreamReport) -> None:
    assert report.figures.duplicates == 0


async def test_no_message_starts_two_upstream_turns(report: UpstreamReport) -> None:
    texts = [o.text for o in report.turns]
    assert max(report.invokes[text] for text in texts) == 1
    for outcome in report.turns:
        expected = 0 if outcome.plan.label == "503-exhausted" else 1
        assert report.invokes[outcome.text] == expected, outcome.plan.label


async def test_every_upstream_retry_after_is_waited_out_before_the_invoke_is_sent_again(
    report: UpstreamReport,
) -> None:
    honoured, seen = report.figures.waits
    assert seen > 0
    assert honoured == seen


async def test_nothing_is_left_in_flight_for_recovery_to_deliver_later(
    report: UpstreamReport,
) -> None:
    assert report.settled


async def test_a_turn_polled_past_poll_timeout_ends_in_an_error_and_the_bridge_keeps_serving() -> (
    None
):
    user, other = FakeUser(7400, "Ada"), FakeUser(7401, "Bea")
    upstream = {**FAST_UPSTREAM, "poll_timeout": 1.0}
    async with telegram_rig("approver", upstream=upstream) as rig:
        fake = rig.fake
        # The stream breaks after task_created; the task then waits for an approval that
        # never comes, so polling gives up after poll_timeout.
        rig.emulator.inject(Fault("drop", after=2))
        fake.queue(user.says(fake, user.id, "wait for me"))
        with anyio.fail_after(TURN_TIMEOUT):
            await fake.wait_for(lambda: len(final_messages(fake, user.id)) == 2)

            async def nothing_in_flight() -> bool:
                return not await rig.runtime.store.list_turns()

            await poll_until(nothing_in_flight)
            fake.queue(other.says(fake, other.id, "/help"))
            await fake.wait_for(lambda: fake.sent(other.id))
        [task] = rig.emulator.tasks.values()
        assert task.status == "paused"
    # The answer's placeholder, sent at the start of the turn, is the one the error edits.
    [error, prompt] = final_messages(fake, user.id)
    assert "wait for me" in prompt.text
    assert "wait for me" not in error.text
