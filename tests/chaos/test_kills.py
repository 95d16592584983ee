"""R4 at CI size: `bridge serve` killed with SIGKILL mid-turn three times (two private
chats and a group) and restarted on the same SQLite store."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from tests.chaos._kills import KillReport, invokes_for, run_kills

SEED = 20260604
KILLS = 3


@pytest.fixture(scope="module")
async def report(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KillReport]:
    yield await run_kills(KILLS, SEED, tmp_path_factory.mktemp("kills"))


async def test_every_process_but_the_last_died_of_sigkill_mid_turn(report: KillReport) -> None:
    assert report.exit_codes == [-signal.SIGKILL] * KILLS + [0]


async def test_each_killed_turn_is_answered_exactly_once_after_the_restart(
    report: KillReport,
) -> None:
    assert [round_.finals for round_ in report.rounds] == [1] * KILLS
    assert report.figures.lost == 0
    assert report.figures.duplicates == 0


async def test_recovery_waits_for_the_running_task_instead_of_invoking_again(
    report: KillReport,
) -> None:
    assert [invokes_for(report, round_) for round_ in report.rounds] == [1] * KILLS
