"""Look-ups the adapter caches: Slack user profiles, agent names, per-user rate windows."""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque

from bridge.client import AgentClient
from bridge.errors import NotFoundError, PlatformError
from bridge.models import User
from bridge_slack._api import SlackApi

__all__ = ["AgentNames", "RateGate", "UserDirectory"]

logger = logging.getLogger(__name__)


class UserDirectory:
    """`input.user` from the Slack profile (`users.info`), cached for `ttl` seconds."""

    def __init__(self, api: SlackApi, ttl: float = 600.0) -> None:
        self.api = api
        self.ttl = ttl
        self._cache: dict[str, tuple[float, User]] = {}
        self._next_prune = 0.0

    async def user(self, team: str, user_id: str) -> User:
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        profile: dict[str, object] = {}
        tz: str | None = None
        try:
            found = (await self.api.call("users.info", form=True, user=user_id)).get("user") or {}
            profile, tz = dict(found.get("profile") or {}), found.get("tz")
        except PlatformError as exc:
            logger.info("no profile for %s: %s", user_id, exc)
        email = profile.get("email")
        user = User(
            # The platform requires an email; without the users:read.email scope we send a
            # non-deliverable address that still identifies the Slack user.
            email=str(email) if email else f"{user_id}@{team or 'slack'}.slack.invalid",
            id=user_id,
            first_name=_str(profile.get("first_name")),
            last_name=_str(profile.get("last_name")),
            display_name=_str(profile.get("display_name") or profile.get("real_name")),
            timezone=tz,
            additional_attributes={"slack_team_id": team, "email_known": bool(email)},
        )
        now = time.monotonic()
        if now >= self._next_prune:  # at most once a ttl: holds users seen within two ttls
            self._next_prune = now + self.ttl
            for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                del self._cache[stale]
        self._cache[user_id] = (now + self.ttl, user)
        return user


def _str(value: object) -> str | None:
    return str(value) if value else None


class AgentNames:
    """Agent name or id → agent id, through the client's `find_agent`."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client
        self._ids: dict[str, str] = {}

    async def resolve(self, name_or_id: str) -> str | None:
        """The agent's id, or None when no agent has that name or id."""
        found = self._ids.get(name_or_id.lower())
        if found is None:
            try:
                found = (await self.client.find_agent(name_or_id)).id
            except NotFoundError:
                return None
            self._ids[name_or_id.lower()] = found
        return found


class RateGate:
    """At most `limit` messages per user per `window` seconds (this process's view)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._next_prune = 0.0

    def admit(self, user: str) -> bool:
        now = time.monotonic()
        if now >= self._next_prune:  # at most once a window: holds users of two windows
            self._next_prune = now + self.window
            horizon = now - self.window
            for idle in [
                k for k, stamps in self._seen.items() if not stamps or stamps[-1] <= horizon
            ]:
                del self._seen[idle]
        stamps = self._seen[user]
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) >= self.limit:
            return False
        stamps.append(now)
        return True
