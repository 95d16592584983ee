"""R7 at CI size: hostile users of the chat platforms against one `bridge serve`; every
attack refused or contained, the process still serving."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos._users import ATTACKS, UsersReport, run_hostile_users


@pytest.fixture(scope="module")
async def report() -> AsyncIterator[UsersReport]:
    yield await run_hostile_users()


async def test_every_attack_is_tried_and_none_errors(report: UsersReport) -> None:
    assert report.errors == {}
    assert set(report.outcomes) == set(ATTACKS)


async def test_no_attack_succeeds(report: UsersReport) -> None:
    assert {name: o for name, o in report.outcomes.items() if o == "succeeded"} == {}


async def test_the_bridge_keeps_serving_after_every_attack(report: UsersReport) -> None:
    assert report.still_serving
