"""The per-user policy every chat surface applies before any work: allow-lists, a per-user
token bucket, a per-conversation queue bound, the agent allow-list and who may stop,
switch or reset someone's turn."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Collection
from typing import TypeVar

from pydantic import BaseModel, Field

from bridge.conversations import Policy
from bridge.errors import StoreError
from bridge.stores import SessionStore
from bridge.stores._retention import refill

__all__ = ["ChatPolicy", "ConfigT", "UserGate", "may_control"]

logger = logging.getLogger(__name__)

_TRACKED_USERS = 10_000


class ChatPolicy(BaseModel):
    """Policy keys every chat adapter's table has (mixed into its config model)."""

    allowed_users: list[str] = Field(
        default_factory=list, description="platform user ids that may talk to agents (empty: all)"
    )
    admins: list[str] = Field(
        default_factory=list,
        description="platform user ids that may stop, switch or reset anyone's conversation",
    )
    default_agent: str | None = Field(
        default=None, description="the agent new conversations talk to (else the first allowed)"
    )
    allowed_agents: list[str] = Field(
        default_factory=list, description="agent names or ids users may choose (empty: all)"
    )
    user_rate_limit: int = Field(default=20, ge=1, description="messages per user per window")
    user_rate_window: float = Field(default=60.0, gt=0, description="seconds of that window")
    max_queued: int = Field(
        default=5, ge=0, description="messages that may wait for one conversation's turn"
    )
    max_file_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="larger shared files are not passed on"
    )
    policy: Policy | None = Field(
        default=None, description="a message during a running turn (unset: [conversations])"
    )
    admin_cache_seconds: float = Field(
        default=60.0, ge=0, description="how long a platform admin check is trusted"
    )

    def is_allowed_user(self, user: str | None) -> bool:
        return not self.allowed_users or (user is not None and user in self.allowed_users)

    def is_allowed_agent(self, agent_id: str, name: str | None = None) -> bool:
        """Whether the agent (by id or, case-insensitively, by name) may be chosen."""
        if not self.allowed_agents:
            return True
        wanted = {entry.casefold() for entry in self.allowed_agents}
        return agent_id.casefold() in wanted or (name is not None and name.casefold() in wanted)


class UserGate:
    """A token bucket per user: `limit` messages per `window` seconds, refilled evenly.

    Checked before anything is posted, downloaded or sent upstream. With a `store` the
    buckets live there (`SessionStore.take_token`), so every replica of one store counts
    against the same bucket; `scope` keeps one surface's users apart from another's.
    Without one, or while the store fails, the buckets are this process's own, and only
    the `tracked` most recently seen users are kept, so a flood of ids cannot grow them.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        store: SessionStore | None = None,
        scope: str = "",
        tracked: int = _TRACKED_USERS,
    ) -> None:
        self.limit, self.window, self.tracked = limit, window, tracked
        self.store, self.scope = store, scope
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def admit(self, user: str) -> bool:
        """Take one token for `user`; False when the bucket is empty."""
        return await self.take(user) == 0.0

    async def take(self, user: str) -> float:
        """Take one token for `user`: 0.0 when admitted, else the seconds until a message
        would be."""
        return await self._take(f"rate|{self.scope}|{user}", self.limit, self.window)

    async def tell(self, user: str) -> bool:
        """Whether to tell a refused `user` to slow down: True at most once per window, on
        every replica together."""
        return await self._take(f"told|{self.scope}|{user}", 1, self.window) == 0.0

    async def _take(self, key: str, capacity: int, window: float) -> float:
        if self.store is not None:
            try:
                return await self.store.take_token(
                    key, capacity=capacity, refill_per_second=capacity / window
                )
            except StoreError as exc:
                logger.warning("per-user limit %s counted by this process only: %s", key, exc)
        return self._take_here(key, capacity, window)

    def _take_here(self, key: str, capacity: int, window: float) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(key, (float(capacity), now))
        tokens, wait = refill(tokens, now - at, capacity, capacity / window)
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.tracked:
            self._buckets.popitem(last=False)
        return wait


def may_control(actor: str | None, requester: str | None, admins: Collection[str]) -> bool:
    """Whether `actor` may stop, switch or reset a conversation `requester` started: the
    requester themself, or an admin. Nobody acts on an unattributed turn but admins."""
    if actor is None:
        return False
    return actor in admins or (requester is not None and actor == requester)


ConfigT = TypeVar("ConfigT", bound=ChatPolicy)
"""A surface's config model, which mixes in `ChatPolicy`."""
