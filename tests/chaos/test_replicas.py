"""R3 at CI size: Slack retries x3 and Telegram webhook replays landing on a second replica
(one Redis store shared by two runtimes) start nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos._replicas import SLACK_RETRIES, ReplicaReport, run_replicas

SEED = 20260603
SLACK, TELEGRAM = 6, 6


@pytest.fixture(scope="module")
async def report(redis_url: str) -> AsyncIterator[ReplicaReport]:
    yield await run_replicas(SLACK, TELEGRAM, SEED, redis_url)


async def test_the_two_replicas_are_distinct(report: ReplicaReport) -> None:
    first, second = report.replica_ids
    assert first != second


async def test_every_delivery_and_redelivery_is_acknowledged(report: ReplicaReport) -> None:
    counts = {m.platform: len(m.statuses) for m in report.messages}
    assert counts == {"slack": 1 + SLACK_RETRIES, "telegram": 2}
    assert {status for m in report.messages for status in m.statuses} == {200}


async def test_each_message_starts_exactly_one_upstream_turn(report: ReplicaReport) -> None:
    assert [report.invokes[m.text] for m in report.messages] == [1] * (SLACK + TELEGRAM)


async def test_each_message_gets_exactly_one_answer(report: ReplicaReport) -> None:
    assert [m.finals for m in report.messages] == [1] * (SLACK + TELEGRAM)
    assert report.figures.answered == SLACK + TELEGRAM
    assert report.settled
