"""Conversation handles: HMAC-sealed (agent, task id, owner, expiry) that any replica can verify.

A handle lets a thread be continued from somewhere other than its own key (another
MCP session, another replica). It is a capability: whoever holds it may continue the
thread, unless it names an owner and the caller is someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from bridge.errors import HandleError, OwnershipError

__all__ = ["ConversationHandle", "HandleSealer"]

_PREFIX = "cv1."


@dataclass(frozen=True, slots=True)
class ConversationHandle:
    agent_id: str
    task_id: str
    owner: str | None
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: SecretStr) -> bytes:
    return hashlib.sha256(b"bridge-handle:" + secret.get_secret_value().encode()).digest()


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


class HandleSealer:
    """Seals handles with one secret (shared by every replica); opens them with it and,
    until `previous_until` (wall-clock seconds), with the `previous` secrets of a rotation."""

    def __init__(
        self,
        secret: SecretStr,
        *,
        ttl: float = 30 * 86400.0,
        previous: Sequence[SecretStr] = (),
        previous_until: float = 0.0,
    ) -> None:
        self._key = _derive(secret)
        self._previous = [_derive(old) for old in previous]
        self._previous_until = previous_until
        self._ttl = ttl

    def _mac(self, body: str) -> str:
        return _mac(self._key, body)

    def _verifies(self, body: str, mac: str) -> bool:
        if hmac.compare_digest(mac, self._mac(body)):
            return True
        if time.time() >= self._previous_until:
            return False
        return any(hmac.compare_digest(mac, _mac(key, body)) for key in self._previous)

    def seal(self, agent_id: str, task_id: str, owner: str | None = None) -> str:
        claims = {"a": agent_id, "t": task_id, "o": owner, "e": int(time.time() + self._ttl)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{_PREFIX}{body}.{self._mac(body)}"

    def open(self, handle: str, *, principal: str | None = None) -> ConversationHandle:
        """Verify a handle.

        Raises:
            HandleError: malformed, tampered with, or expired.
            OwnershipError: the handle names an owner and `principal` is someone else.
        """
        if not isinstance(handle, str) or not handle.startswith(_PREFIX) or handle.count(".") != 2:
            raise HandleError("malformed")
        body, mac = handle[len(_PREFIX) :].split(".")
        if not self._verifies(body, mac):
            raise HandleError("signature does not match")
        try:
            claims = json.loads(_unb64(body))
            sealed = ConversationHandle(
                agent_id=str(claims["a"]),
                task_id=str(claims["t"]),
                owner=claims.get("o"),
                expires_at=float(claims["e"]),
            )
        except (ValueError, KeyError, TypeError):
            raise HandleError("malformed") from None
        if sealed.expires_at < time.time():
            raise HandleError("expired")
        if sealed.owner and principal and sealed.owner != principal:
            raise OwnershipError("this conversation belongs to another user")
        return sealed
