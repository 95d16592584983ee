"""Slack user profiles (`users.info`), cached: the upstream `User` and whether the user is a
workspace admin or owner."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from bridge.chat import TtlCache
from bridge.errors import PlatformError
from bridge.models import User
from bridge_slack._api import SlackApi

__all__ = ["UserDirectory"]

logger = logging.getLogger(__name__)


class UserDirectory:
    """`users.info` per user, cached for `ttl` seconds (failures too, briefly)."""

    def __init__(self, api: SlackApi, ttl: float = 600.0) -> None:
        self.api = api
        self._cache = TtlCache[tuple[str, str], dict[str, Any]](ttl)

    async def _info(self, team: str, user_id: str) -> dict[str, Any]:
        return await self._cache.get((team, user_id), partial(self._fetch, user_id))

    async def _fetch(self, user_id: str) -> dict[str, Any]:
        try:
            found = await self.api.call("users.info", form=True, user=user_id)
        except PlatformError as exc:
            logger.info("no profile for %s: %s", user_id, exc)
            return {}
        return dict(found.get("user") or {})

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
