"""The chat layer itself: the progress reducer, the readers of approvals and sign-ins, the
final-answer rule and failure wording, the per-user policy, the agent directory, and the
driver's containment of a surface's failures (real turns on the emulator)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import errors
from bridge.chat import (
    NOT_SHOWN_TEXT,
    AgentDirectory,
    ApprovalRequest,
    Failure,
    Progress,
    SignInRequest,
    Step,
    UserGate,
    approval_request,
    drive,
    failure_of,
    final_answer,
    may_control,
    sign_in_request,
    step_of,
)
from bridge.client import AgentClient
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.emulator import Emulator
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    ContextCompacted,
    PlanUpdated,
    ResumedByPolling,
    SubAgentTriggered,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.models import Task
from bridge.stores import MemoryStore
from tests.conversations.conftest import client, conversations, emulator, store

__all__ = ["client", "conversations", "emulator", "store"]

pytestmark = pytest.mark.anyio


# -- the reducer ---------------------------------------------------------------------


def test_each_progress_event_is_one_step_and_other_events_are_none() -> None:
    assert step_of(ThoughtRecorded(title="Plan", thought="search first")) == Step(
        "thinking", "Plan", "think:Plan", "done"
    )
    assert step_of(AnalysisRecorded(analysis="x" * 500)).label.endswith("…")  # type: ignore[union-attr]
    assert step_of(PlanUpdated(tasks=[{}, {}])) == Step("plan", "Plan of 2 steps", "plan", "done")
    assert step_of(SubAgentTriggered(sub_task_id="s1")).kind == "agent"  # type: ignore[union-attr]
    assert step_of(ContextCompacted()).kind == "compacted"  # type: ignore[union-attr]
    assert step_of(ResumedByPolling(reason="stream cut")).kind == "resumed"  # type: ignore[union-attr]
    assert step_of(TextDelta(text="hi")) is None


def test_a_tool_call_and_its_result_are_one_step_updated_in_place() -> None:
    progress = Progress()
    requested = step_of(ToolCallRequested(tool_name="search", tool_call_id="c1"))
    finished = step_of(ToolCallFinished(tool_name="search", tool_call_id="c1", is_error=True))
    assert requested is not None and finished is not None
    progress.add(requested)
    assert requested.line == "Using search"
    progress.add(step_of(ThoughtRecorded(title="Think", time="t1")))  # type: ignore[arg-type]
    progress.add(finished)
    assert [step.line for step in progress.steps] == ["Failed: search", "Think"]
    assert progress.current is not None and progress.current.label == "Think"


# -- approvals and sign-ins ----------------------------------------------------------


def test_the_older_hitl_shape_is_read_with_title_content_and_operation_id() -> None:
    task = Task(
        id="t1",
        status="paused",
        hitl_request={
            "operation_id": "op-1",
            "title": "Approval required",
            "content": "Delete the logs?",
            "approval_url": "https://approve.example.com/op-1",
        },
    )
    assert approval_request(task) == ApprovalRequest(
        "Approval required", "Delete the logs?", "https://approve.example.com/op-1", "op-1"
    )
    assert approval_request(task).text == "Approval required\nDelete the logs?"  # type: ignore[union-attr]


def test_the_newer_hitl_shape_is_an_untitled_approval_with_its_wait_node() -> None:
    task = Task(id="t1", status="paused", hitl_request={"wait_node_id": "node-7"})
    assert approval_request(task) == ApprovalRequest("Approval required", "", None, "node-7")
    assert approval_request(task).text == "Approval required"  # type: ignore[union-attr]


def test_only_a_paused_task_asks_and_only_web_links_are_offered() -> None:
    assert approval_request(Task(id="t1", status="executing", hitl_request={"title": "x"})) is None
    hostile = Task(
        id="t1", status="paused", hitl_request={"description": "ok?", "url": "javascript:alert(1)"}
    )
    assert approval_request(hostile) == ApprovalRequest("Approval required", "ok?")


def test_sign_in_is_read_from_the_auth_event_and_from_the_pending_connector() -> None:
    event = AuthEventReceived(
        kind="login_required", url="https://login.example.com/a", server_name="Mail"
    )
    assert sign_in_request(event) == SignInRequest("https://login.example.com/a", "Mail")
    pending = Task(
        id="t1",
        pending_eca_request={"auth_url": "https://login.example.com/b", "connector_name": "Drive"},
    )
    assert sign_in_request(pending) == SignInRequest("https://login.example.com/b", "Drive")
    assert "Sign in to Drive" in sign_in_request(pending).text  # type: ignore[union-attr]
    assert sign_in_request(AuthEventReceived(kind="token_ready")) is None


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,x", "slack://open", " "]
)
def test_a_sign_in_link_that_is_not_http_is_refused(url: str) -> None:
    event = AuthEventReceived(kind="login_required", url=url, server_name="Mail")
    pending = Task(id="t1", pending_eca_request={"auth_url": url})
    assert sign_in_request(event) is None and sign_in_request(pending) is None


# -- wording -------------------------------------------------------------------------


def test_the_final_answer_is_the_result_else_the_streamed_text_else_visibly_none() -> None:
    assert final_answer(Task(id="t", result="The result."), "streamed") == "The result."
    assert final_answer(Task(id="t", result="  "), "streamed") == "streamed"
    assert final_answer(None, "") == "(no answer)"


def test_every_way_a_turn_ends_without_its_answer_has_one_wording() -> None:
    stopped = errors.RunFailedError(Task(id="t", status="stopped"))
    failed = errors.RunFailedError(Task(id="t", status="error", result="It crashed."))
    assert failure_of(stopped) == Failure("stopped", "stopped", "⏹ Stopped.")
    assert failure_of(failed) == Failure(
        "failed", "error", "⚠️ The agent could not finish (error): It crashed."
    )
    assert failure_of(errors.UpstreamTimeoutError("slow")).kind == "timed_out"
    assert failure_of(errors.UpstreamError("down")).text.startswith("⚠️ The agent platform")
    assert failure_of(None) == Failure("not_shown", "error", NOT_SHOWN_TEXT)


# -- policy --------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _admitted(gate: UserGate, user: str, count: int) -> list[bool]:
    return [await gate.admit(user) for _ in range(count)]


@pytest.mark.parametrize("on_store", [False, True], ids=["in-process", "store"])
async def test_the_user_gate_refills_evenly(
    monkeypatch: pytest.MonkeyPatch, on_store: bool
) -> None:
    clock = _Clock()
    monkeypatch.setattr("bridge.chat._policy.time.monotonic", clock)
    async with MemoryStore(clock=clock) as shared:
        gate = UserGate(limit=2, window=10.0, store=shared if on_store else None)
        assert await _admitted(gate, "u1", 3) == [True, True, False]
        assert await gate.admit("u2")  # buckets are per user
        clock.now += 4.0  # 0.8 of a token: still empty
        assert await gate.take("u1") == pytest.approx(1.0)
        clock.now += 1.5  # 1.1 tokens
        assert await _admitted(gate, "u1", 2) == [True, False]
        clock.now += 1000.0  # never more than `limit`
        assert await _admitted(gate, "u1", 3) == [True, True, False]


async def test_the_user_gate_tells_a_refused_user_once_per_window() -> None:
    clock = _Clock()
    async with MemoryStore(clock=clock) as shared:
        gate = UserGate(limit=1, window=60.0, store=shared, scope="line")
        assert await gate.admit("u1") and not await gate.admit("u1")
        assert [await gate.tell("u1") for _ in range(3)] == [True, False, False]
        clock.now += 61.0
        assert await gate.tell("u1")


async def test_user_gates_on_one_store_share_each_users_bucket() -> None:
    async with MemoryStore() as shared:
        replicas = [UserGate(limit=3, window=3600.0, store=shared, scope="s") for _ in range(2)]
        other_surface = UserGate(limit=3, window=3600.0, store=shared, scope="t")
        taken = [await replicas[index % 2].admit("u1") for index in range(6)]
        assert taken == [True, True, True, False, False, False]
        assert await other_surface.admit("u1")


async def test_a_user_gate_whose_store_fails_counts_in_this_process() -> None:
    shared = MemoryStore()  # never opened: every call raises StoreError
    gate = UserGate(limit=2, window=3600.0, store=shared)
    assert await _admitted(gate, "u1", 3) == [True, True, False]


async def test_the_user_gate_tracks_a_bounded_number_of_users() -> None:
    gate = UserGate(limit=1, window=3600.0, tracked=3)
    assert await gate.admit("first") and not await gate.admit("first")
    for number in range(1000):
        await gate.admit(f"flood-{number}")
    assert len(gate._buckets) == 3
    assert await gate.admit("first")  # forgotten, so full again: the map stays bounded


def test_only_the_requester_or_an_admin_controls_a_turn() -> None:
    assert may_control("alice", "alice", [])
    assert not may_control("bob", "alice", [])
    assert may_control("root", "alice", ["root"])
    assert not may_control("alice", None, [])
    assert may_control("root", None, ["root"])
    assert not may_control(None, "alice", ["root"])


# -- the agent directory -------------------------------------------------------------


async def test_the_directory_keeps_its_list_for_its_ttl(
    client: AgentClient, emulator: Emulator
) -> None:
    cached, fresh = AgentDirectory(client, ttl=3600.0), AgentDirectory(client, ttl=0.0)
    assert (await cached.find("writer")) is not None
    assert await fresh.find("newcomer") is None
    emulator.add_agent("newcomer")
    assert await cached.find("newcomer") is None  # within its ttl
    assert (await fresh.find("NEWCOMER")) is not None  # by name, case-insensitive
    cached.forget()
    found = await cached.find("newcomer")
    assert found is not None and (await cached.find(found.id)) == found  # by id too


async def test_the_directory_suggests_close_names(client: AgentClient) -> None:
    directory = AgentDirectory(client)
    assert await directory.close_matches("wrtier") == ["writer"]
    assert await directory.close_matches("zzzzzz") == []


# -- the driver ----------------------------------------------------------------------


class _View:
    """A view that records what it was shown; `broken` makes `finish` raise it."""

    def __init__(self, conversations: Conversations, broken: BaseException | None) -> None:
        self.conversations, self.broken = conversations, broken
        self.calls: list[tuple[str, Any]] = []
        self.attempts_at_fail: int | None = None
        self.turn_id = ""
        self.emulator: Emulator | None = None
        """When set, every approval is granted on the emulator as soon as it is shown."""

    async def start(self) -> None:
        self.calls.append(("start", None))

    async def text(self, delta: str, streamed: str) -> None:
        self.calls.append(("text", streamed))

    async def progress(self, step: Step, progress: Progress) -> None:
        self.calls.append(("progress", step.line))

    async def approval(self, request: ApprovalRequest) -> None:
        self.calls.append(("approval", request.text))
        if self.emulator is not None:
            for task in self.emulator.tasks.values():
                if task.status == "paused":
                    self.emulator.resume(task.id, approved=True)

    async def sign_in(self, request: SignInRequest) -> None:
        self.calls.append(("sign_in", request.text))

    async def finish(self, answer: str) -> None:
        if self.broken is not None:
            raise self.broken
        self.calls.append(("finish", answer))

    async def fail(self, failure: Failure, streamed: str) -> None:
        record = await self.conversations.store.get_turn(self.turn_id)
        self.attempts_at_fail = record.attempts if record is not None else None
        self.calls.append(("fail", failure.text))


async def _drive(conversations: Conversations, text: str, view: _View, agent: str) -> None:
    agent_id = (await AgentDirectory(conversations.client).find(agent)).id  # type: ignore[union-attr]
    key = ConversationKey("test", "space", text)
    async with conversations.turn(key, Message(text), agent_id=agent_id, source="api") as turn:
        view.turn_id = turn.record.turn_id
        await drive(turn, view, conversations)


async def test_the_driver_shows_steps_text_and_the_final_answer(
    conversations: Conversations,
) -> None:
    view = _View(conversations, None)
    await _drive(conversations, "otters", view, "researcher")
    kinds = [name for name, _ in view.calls]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert ("progress", "Using search_web") in view.calls
    assert view.calls[-1][1].startswith("Here is what I found about otters")


async def test_a_paused_turn_asks_once_then_shows_that_the_user_answered(
    conversations: Conversations, emulator: Emulator
) -> None:
    view = _View(conversations, None)
    view.emulator = emulator
    await _drive(conversations, "ship it", view, "approver")
    assert view.calls == [
        ("start", None),
        ("approval", "Approval required\nThe agent wants to act on: ship it"),
        ("progress", "The user answered; working"),
        ("text", "Approved. "),
        ("text", "Approved. Done: ship it"),
        ("finish", "Approved. Done: ship it"),
    ]


async def test_a_failed_turn_ends_in_fail_with_the_shared_wording(
    conversations: Conversations,
) -> None:
    view = _View(conversations, None)
    await _drive(conversations, "please", view, "failing")
    assert view.calls[-1] == (
        "fail",
        "⚠️ The agent could not finish (failed): "
        "Scripted failure: the agent could not complete the task.",
    )


async def test_a_view_that_breaks_gets_fail_not_shown_and_the_failure_is_counted(
    conversations: Conversations,
) -> None:
    view = _View(conversations, RuntimeError("a rendering bug"))
    await _drive(conversations, "hello", view, "echo")
    assert view.calls[-1] == ("fail", NOT_SHOWN_TEXT)
    assert view.attempts_at_fail == 1


async def test_a_platform_error_of_the_view_propagates_for_recovery(
    conversations: Conversations,
) -> None:
    view = _View(conversations, errors.PlatformError("chat is down", platform="test"))
    with pytest.raises(errors.PlatformError, match="chat is down"):
        await _drive(conversations, "hello", view, "echo")
    assert not any(name == "fail" for name, _ in view.calls)
