"""The Slack adapter's profile cache keeps only users seen recently."""

from __future__ import annotations

import time

import anyio
from bridge_slack._api import SlackApi
from bridge_slack._directory import UserDirectory
from bridge_slack.testing import FakeSlack

WINDOW = 0.05


async def _past(seconds: float) -> None:
    """Let `seconds` of monotonic time pass: the maps expire by clock, not by an event."""
    deadline = time.monotonic() + seconds
    with anyio.fail_after(5):
        while time.monotonic() <= deadline:  # noqa: ASYNC110
            await anyio.sleep(seconds / 4)


async def test_user_directory_forgets_expired_profiles(slack: FakeSlack) -> None:
    directory = UserDirectory(SlackApi(slack.bot_token, slack.api_url), ttl=WINDOW)
    for index in range(50):
        user = await directory.user("T1", f"U{index}")
        assert user.id == f"U{index}"
    await _past(WINDOW * 2)
    await directory.user("T1", "U0")
    assert list(directory._cache) == [("T1", "U0")]
