"""The chat layer every surface shares: the turn driver over an `AnswerView`, one reducer
from events to progress, one reading of approvals and sign-ins, one final-answer rule and
failure wording, the per-user policy, the agent directory, and the chat flow (`ChatService`)
a chat surface builds on: it reads its platform's events into `Incoming` messages and
supplies how its platform shows things, and the recorded messages an answer is drawn in
(`AnswerMessages`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.chat._asks import ApprovalRequest, SignInRequest, approval_request, sign_in_request
    from bridge.chat._cache import TtlCache
    from bridge.chat._directory import AgentDirectory
    from bridge.chat._driver import AnswerView, drive
    from bridge.chat._flow import ChatService
    from bridge.chat._incoming import Attachment, Command, Incoming
    from bridge.chat._messages import AnswerMessages, MessageCalls
    from bridge.chat._policy import ChatPolicy, UserGate, may_control
    from bridge.chat._progress import Progress, Step, StepKind, step_of
    from bridge.chat._wording import NOT_SHOWN_TEXT, ChatWording, Failure, failure_of, final_answer

__all__ = [
    "NOT_SHOWN_TEXT",
    "AgentDirectory",
    "AnswerMessages",
    "AnswerView",
    "ApprovalRequest",
    "Attachment",
    "ChatPolicy",
    "ChatService",
    "ChatWording",
    "Command",
    "Failure",
    "Incoming",
    "MessageCalls",
    "Progress",
    "SignInRequest",
    "Step",
    "StepKind",
    "TtlCache",
    "UserGate",
    "approval_request",
    "drive",
    "failure_of",
    "final_answer",
    "may_control",
    "sign_in_request",
    "step_of",
]

# Loaded on first use, so that a surface loads only the parts it uses (`bridge mcp`
# has no chat flow, policy or message records).
_MODULES = {
    "AgentDirectory": "_directory",
    "AnswerMessages": "_messages",
    "AnswerView": "_driver",
    "ApprovalRequest": "_asks",
    "Attachment": "_incoming",
    "ChatPolicy": "_policy",
    "ChatService": "_flow",
    "ChatWording": "_wording",
    "Command": "_incoming",
    "Failure": "_wording",
    "Incoming": "_incoming",
    "MessageCalls": "_messages",
    "NOT_SHOWN_TEXT": "_wording",
    "Progress": "_progress",
    "SignInRequest": "_asks",
    "Step": "_progress",
    "StepKind": "_progress",
    "TtlCache": "_cache",
    "UserGate": "_policy",
    "approval_request": "_asks",
    "drive": "_driver",
    "failure_of": "_wording",
    "final_answer": "_wording",
    "may_control": "_policy",
    "sign_in_request": "_asks",
    "step_of": "_progress",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
