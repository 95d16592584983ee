"""What a turn asks of its user: approval (`hitl_request`, both published shapes) and sign-in
(`auth_event`, or `pending_eca_request` on the task). One reading for every surface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bridge.events import AuthEventReceived
from bridge.models import Task

__all__ = ["ApprovalRequest", "SignInRequest", "approval_request", "sign_in_request"]

_WEB = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A paused turn waiting for a human decision."""

    title: str
    content: str
    url: str | None = None
    """Where to approve, when the platform gave a web link."""
    reference: str | None = None
    """`operation_id` (older shape) or `wait_node_id` (newer shape)."""

    @property
    def text(self) -> str:
        """Title and content on one line each, as every surface shows them."""
        return f"{self.title}\n{self.content}" if self.content else self.title


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """A connector that needs the end user to sign in before the turn can go on."""

    url: str
    server: str

    @property
    def text(self) -> str:
        """The one wording of the request, link included."""
        return f"Sign in to {self.server} to let the agent go on: {self.url}"


def _web_url(value: Any) -> str | None:
    """Only http(s) links are offered to users: agent output must not smuggle other schemes."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip() if urlsplit(value.strip()).scheme.lower() in _WEB else None


def approval_request(task: Task) -> ApprovalRequest | None:
    """The approval a paused task waits for, or None when it waits for nothing.

    Reads both shapes of `hitl_request`: `{operation_id, content, title?, description?}`
    and `{wait_node_id}`; a paused task without one still asks for approval, untitled.
    """
    if not task.is_paused:
        return None
    raw = task.hitl_request if isinstance(task.hitl_request, dict) else {}
    title = str(raw.get("title") or "Approval required").strip()
    content = str(raw.get("content") or raw.get("description") or raw.get("message") or "")
    reference = raw.get("operation_id") or raw.get("wait_node_id")
    return ApprovalRequest(
        title=title,
        content=content.strip(),
        url=_web_url(raw.get("url") or raw.get("approval_url")),
        reference=str(reference) if reference else None,
    )


def sign_in_request(source: AuthEventReceived | Task) -> SignInRequest | None:
    """The sign-in an auth event (or a task's pending connector) asks for, if any."""
    if isinstance(source, AuthEventReceived):
        url = _web_url(source.url) if source.is_login_required else None
        server = source.server_name or "a connected service"
    else:
        pending = source.pending_eca_request if isinstance(source.pending_eca_request, dict) else {}
        url = _web_url(pending.get("auth_url"))
        server = str(pending.get("connector_name") or "a connected service")
    return SignInRequest(url, server) if url else None
