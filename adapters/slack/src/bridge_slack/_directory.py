"""Slack user profiles (`users.info`), cached: the upstream `User` and whether the user is a
workspace admin or owner."""

from __future__ import annotations

import logging
import time
from typing import Any

from bridge.errors import PlatformError
from bridge.models import User
from bridge_slack._api import SlackApi

__all__ = ["UserDirectory"]

logger = logging.getLogger(__name__)


class UserDirectory:
    """`users.info` per user, cached for `ttl` seconds (failures too, briefly)."""

    def __init__(self, api: SlackApi, ttl: float = 600.0) -> None:
        self.api = api
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._next_prune = 0.0

    async def _info(self, team: str, user_id: str) -> dict[str, Any]:
        cached = self._cache.get((team, user_id))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found: dict[str, Any] = {}
        try:
            found = dict(
                (await self.api.call("users.info", form=True, user=user_id)).get("user") or {}
            )
        except PlatformError as exc:
            logger.info("no profile for %s: %s", user_id, exc)
        now = time.monotonic()
        if now >= self._next_prune:  # at most once a ttl: holds users seen within two ttls
            self._next_prune = now + self.ttl
            for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                del self._cache[stale]
        self._cache[(team, user_id)] = (now + self.ttl, found)
        return found

    async def is_admin(self, team: str, user_id: str) -> bool:
        """Whether Slack says the user is an admin or owner of the workspace."""
        info = await self._info(team, user_id)
        return bool(info.get("is_admin") or info.get("is_owner"))

    async def user(self, team: str, user_id: str) -> User:
        """`input.user` from the Slack profile."""
        info = await self._info(team, user_id)
        profile: dict[str, Any] = dict(info.get("profile") or {})
        email = profile.get("email")
        return User(
            # The platform requires an email; without the users:read.email scope we send a
            # non-deliverable address that still identifies the Slack user.
            email=str(email) if email else f"{user_id}@{team or 'slack'}.slack.invalid",
            id=user_id,
            first_name=_str(profile.get("first_name")),
            last_name=_str(profile.get("last_name")),
            display_name=_str(profile.get("display_name") or profile.get("real_name")),
            timezone=info.get("tz"),
            additional_attributes={"slack_team_id": team, "email_known": bool(email)},
        )


def _str(value: object) -> str | None:
    return str(value) if value else None
