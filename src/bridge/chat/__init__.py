"""The chat layer every surface shares: the turn driver over an `AnswerView`, one reducer
from events to progress, one reading of approvals and sign-ins, one final-answer rule and
failure wording, the per-user policy, the agent directory, and the chat flow (`ChatService`)
a chat surface builds on: it reads its platform's events into `Incoming` messages and
supplies how its platform shows things, and the recorded messages an answer is drawn in
(`AnswerMessages`)."""

from __future__ import annotations

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
