"""The Slack adapter's per-user maps keep only users seen recently."""

from __future__ import annotations

import time

import anyio
from bridge_slack._api import SlackApi
from bridge_slack._directory import RateGate, UserDirectory
from bridge_slack.testing import FakeSlack

WINDOW = 0.05


async def _past(seconds: float) -> None:
    """Let `seconds` of monotonic time pass: the maps expire by clock, not by an event."""
    deadline = time.monotonic() + seconds
    with anyio.fail_after(5):
        while time.monotonic() <= deadline:  # noqa: ASYNC110
            await anyio.sleep(seconds / 4)


async def test_rate_gate_limits_each_user_and_forgets_idle_users() -> None:
    gate = RateGate(limit=2, window=WINDOW)
    assert [gate.admit("U1") for _ in range(3)] == [True, True, False]
    for index in range(500):
        assert gate.admit(f"U{index + 2}") is True
    await _past(WINDOW * 2)
    assert gate.admit("U1") is True
    assert list(gate._seen) == ["U1"]


async def test_user_directory_forgets_expired_profiles(slack: FakeSlack) -> None:
    directory = UserDirectory(SlackApi(slack.bot_token, slack.api_url), ttl=WINDOW)
    for index in range(50):
        user = await directory.user("T1", f"U{index}")
        assert user.id == f"U{index}"
    await _past(WINDOW * 2)
    await directory.user("T1", "U0")
    assert list(directory._cache) == ["U0"]
