"""The emulated REST API: auth, errors, pagination, tasks, threads, multi-turn, recording."""

from __future__ import annotations

import anyio
import httpx
import pytest

from bridge.emulator import DEMO_AGENTS, AgentSpec, Emulator, agent_id, serving
from bridge.testing import open_emulator

from ._sse import collect, frames, path, stream


async def test_health_answers_ok_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"x-api-key": ""})

    assert response.status_code == 200
    assert response.json() == "ok"


@pytest.mark.parametrize(
    "headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer test-key"}]
)
async def test_v1_endpoints_refuse_a_missing_or_wrong_key_with_401(
    emu: Emulator, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as anonymous:
        for response in (
            await anonymous.get("/v1/agents"),
            await anonymous.post(path("echo"), json={"input": {"text": "hi"}}),
            await anonymous.get("/v1/tasks/anything"),
        ):
            assert response.status_code == 401
            assert response.json() == {"detail": "Invalid or missing API key"}
    assert emu.tasks == {}


async def test_an_emulator_without_a_configured_key_accepts_any_non_empty_key() -> None:
    async with (
        serving(Emulator(api_key=None), host="127.0.0.1", port=0) as emu,
        httpx.AsyncClient(base_url=emu.base_url) as anonymous,
    ):
        accepted = await anonymous.get("/v1/agents", headers={"x-api-key": "anything"})
        refused = await anonymous.get("/v1/agents")

    assert accepted.status_code == 200
    assert refused.status_code == 401


async def test_unknown_agent_and_task_answer_404_with_a_detail(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/v1/agents/no-such-agent"),
        await client.post("/v1/agents/no-such-agent/invoke", json={"input": {"text": "x"}}),
        await client.get("/v1/tasks/no-such-task"),
        await client.post("/v1/tasks/no-such-task/stop"),
        await client.delete("/v1/tasks/no-such-task"),
        await client.get("/v1/tasks/no-such-task/thread"),
        await client.get("/v1/no-such-endpoint"),
    ):
        assert response.status_code == 404
        assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("content", "loc", "type_"),
    [
        (b'{"id": "t-1"}', ["body", "input"], "missing"),
        (
            b'{"input": {"text": "hi", "user": {"id": "u-1"}}}',
            ["body", "input", "user", "email"],
            "missing",
        ),
        (b'{"input": {"text": 42}}', ["body", "input", "text"], "string_type"),
        (
            b'{"input": {"text": "hi"}, "output_format": "pdf"}',
            ["body", "output_format"],
            "literal_error",
        ),
        (b"{not json", ["body", 1], "json_invalid"),
        (b"", ["body"], "missing"),
    ],
)
async def test_invalid_invoke_bodies_answer_422_with_a_detail_list_and_create_no_task(
    emu: Emulator, client: httpx.AsyncClient, content: bytes, loc: list[object], type_: str
) -> None:
    for mode in ("sync", "async", "stream"):
        response = await client.post(
            path("echo", mode), content=content, headers={"content-type": "application/json"}
        )

        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == loc
        assert error["type"] == type_
        assert isinstance(error["msg"], str)
    assert emu.tasks == {}


async def test_agent_list_paginates_with_the_spec_envelope() -> None:
    extra = [AgentSpec(f"extra-{n:02d}", f"Extra agent {n}") for n in range(60)]
    async with (
        open_emulator(extra_agents=extra) as emu,
        httpx.AsyncClient(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as client,
    ):
        first = (await client.get("/v1/agents", params={"per_page": 50})).json()
        second = (await client.get("/v1/agents", params={"per_page": 50, "page": 2})).json()
        default = (await client.get("/v1/agents")).json()
        beyond = (await client.get("/v1/agents", params={"page": 9})).json()
        too_many = await client.get("/v1/agents", params={"per_page": 51})
        page_zero = await client.get("/v1/agents", params={"page": 0})
        not_a_number = await client.get("/v1/agents", params={"per_page": "many"})

    assert (first["total"], first["page"], first["per_page"], first["total_pages"]) == (
        67,
        1,
        50,
        2,
    )
    assert len(first["items"]) == 50 and len(second["items"]) == 17
    names = [item["name"] for item in first["items"] + second["items"]]
    assert names == [*DEMO_AGENTS, *(spec.name for spec in extra)]
    assert (default["per_page"], len(default["items"]), default["total_pages"]) == (20, 20, 4)
    assert beyond["items"] == [] and beyond["total"] == 67
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "per_page"]
    assert page_zero.status_code == 422
    assert page_zero.json()["detail"][0]["loc"] == ["query", "page"]
    assert not_a_number.status_code == 422


async def test_demo_agents_have_stable_ids_descriptions_and_details(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    listed = (await client.get("/v1/agents")).json()["items"]

    assert [item["name"] for item in listed] == list(DEMO_AGENTS)
    for item in listed:
        assert item["id"] == agent_id(item["name"])
        assert item["description"]
        assert item["status"] == "ACTIVE"
        assert item["organization_id"] == emu.organization_id
        detail = (await client.get(f"/v1/agents/{item['id']}")).json()
        assert (detail["id"], detail["name"], detail["version"]) == (item["id"], item["name"], 1)


async def test_agents_added_and_removed_at_runtime_change_the_list(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.add_agent(AgentSpec("helper", "Helps.", script="researcher"))
    added = [item["name"] for item in (await client.get("/v1/agents")).json()["items"]]
    emu.remove_agent("echo")
    removed = [item["name"] for item in (await client.get("/v1/agents")).json()["items"]]
    gone = await client.post(f"/v1/agents/{agent_id('echo')}/invoke", json={"input": {"text": "x"}})

    assert added[0] == "helper" and "echo" in added
    assert "echo" not in removed and "helper" in removed
    assert gone.status_code == 404
    transcript = await stream(client, "helper", "topic")
    assert "tool_call_request" in transcript.types


async def test_sync_invoke_returns_the_finished_task(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    response = await client.post(path("echo", "sync"), json={"input": {"text": "Say hello"}})

    task = response.json()
    assert response.status_code == 200
    assert task["status"] == "completed"
    assert task["result"] == "Say hello"
    assert task["agent_id"] == agent_id("echo")
    assert task["organization_id"] == emu.organization_id
    assert task["finished_at"].endswith("Z") and task["tokens"]["total_tokens"] > 0
    assert (await client.get(f"/v1/tasks/{task['id']}")).json()["result"] == "Say hello"


async def test_async_invoke_answers_pending_and_the_turn_finishes_in_the_background(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    response = await client.post(path("echo", "async"), json={"input": {"text": "later"}})

    task = response.json()
    assert response.status_code == 200
    assert (task["status"], task["result"]) == ("pending", None)
    with anyio.fail_after(5):
        await emu.wait_for_status(task["id"], "completed")
    polled = (await client.get(f"/v1/tasks/{task['id']}")).json()
    assert (polled["status"], polled["result"]) == ("completed", "later")


async def test_each_turn_records_its_source_defaulting_to_api_and_its_user(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    user = {"id": "u-42", "email": "ann@example.com", "first_name": "Ann"}
    first = await stream(
        client, "echo", "one", source="telegram", input={"text": "one", "user": user}
    )
    task_id = first.final["id"]
    await stream(client, "echo", "two", id=task_id)

    record = emu.tasks[task_id]
    assert record.sources == ["telegram", "api"]
    assert record.users == [{**user, "display_name": "ann@example.com"}, None]
    assert [turn["text"] for turn in record.inputs] == ["one", "two"]
    assert first.events[0]["data"]["input"]["user"]["display_name"] == "ann@example.com"
    assert first.events[0]["data"]["source"] == "telegram"
    listed = (await client.get("/v1/tasks")).json()["items"][0]
    assert (listed["source_node_type"], listed["user_id"]) == ("api", None)


async def test_a_follow_up_turn_continues_the_thread_under_the_same_id(
    client: httpx.AsyncClient,
) -> None:
    first = await stream(client, "echo", "What's the weather?")
    task_id = first.final["id"]
    second = await stream(client, "echo", "And tomorrow?", id=task_id)

    assert {event["task_id"] for event in second.events} == {task_id}
    assert second.types[0] == "task_created"
    assert second.events[0]["data"]["input"]["text"] == "And tomorrow?"
    task = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert (task["input"]["text"], task["result"]) == ("And tomorrow?", "And tomorrow?")
    thread = (await client.get(f"/v1/tasks/{task_id}/thread")).json()
    assert [(m["id"], m["role"], m["content"]) for m in thread] == [
        (f"{task_id}_user_1", "user", "What's the weather?"),
        (f"{task_id}_agent_1", "assistant", "What's the weather?"),
        (f"{task_id}_user_2", "user", "And tomorrow?"),
        (f"{task_id}_agent_2", "assistant", "And tomorrow?"),
    ]
    assert all(isinstance(message["created_at"], int) for message in thread)
    full = (await client.get(f"/v1/tasks/{task_id}/thread/full")).json()
    assert [m["id"] for m in full["root"]] == [m["id"] for m in thread]
    assert len((await client.get("/v1/tasks")).json()["items"]) == 1


async def test_an_unknown_id_starts_a_new_thread_with_that_id(client: httpx.AsyncClient) -> None:
    transcript = await stream(client, "echo", "hi", id="conversation-thread-123")

    assert transcript.final["id"] == "conversation-thread-123"
    assert (await client.get("/v1/tasks/conversation-thread-123")).json()["status"] == "completed"


async def test_a_second_turn_while_the_first_is_running_answers_409(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    running = (
        await client.post(path("approver", "async"), json={"input": {"text": "deploy"}})
    ).json()
    with anyio.fail_after(5):
        await emu.wait_for_status(running["id"], "paused")

    refused = await client.post(
        path("echo", "stream"), json={"input": {"text": "again"}, "id": running["id"]}
    )

    assert refused.status_code == 409
    assert isinstance(refused.json()["detail"], str)
    assert emu.max_concurrent_turns(running["id"]) == 2
    assert emu.conflicts == [running["id"]]
    assert len(emu.tasks[running["id"]].turns) == 1
    emu.resume(running["id"])
    with anyio.fail_after(5):
        await emu.wait_for_status(running["id"], "completed")
    accepted = await stream(client, "echo", "again", id=running["id"])
    assert accepted.final["status"] == "completed"


async def test_sequential_turns_never_count_as_concurrent(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    first = await stream(client, "echo", "a", id="t-seq")
    await stream(client, "echo", "b", id=first.final["id"])

    assert emu.max_concurrent_turns("t-seq") == 1
    assert emu.stats()["max_overlap"] == 1 and emu.conflicts == []


async def test_task_lists_filter_by_agent_user_and_status(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    ann = {"id": "ann", "email": "ann@example.com"}
    echoed = await stream(client, "echo", "x", input={"text": "x", "user": ann})
    failed = await stream(client, "failing", "x")

    everything = (await client.get("/v1/tasks")).json()
    by_user = (await client.get("/v1/tasks", params={"user_id": "ann"})).json()
    by_status = (await client.get("/v1/tasks", params={"status": "failed"})).json()
    by_agent = (await client.get(f"/v1/agents/{agent_id('echo')}/tasks")).json()
    bad_status = await client.get("/v1/tasks", params={"status": "running"})

    assert [item["id"] for item in everything["items"]] == [failed.final["id"], echoed.final["id"]]
    assert [item["id"] for item in by_user["items"]] == [echoed.final["id"]]
    assert [item["id"] for item in by_status["items"]] == [failed.final["id"]]
    assert [item["id"] for item in by_agent["items"]] == [echoed.final["id"]]
    assert bad_status.status_code == 422


async def test_stop_ends_a_running_stream_with_a_stopped_task_finished(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    seen: list[str] = []
    with anyio.fail_after(5):
        async with client.stream(
            "POST", path("slow"), json={"input": {"text": "wait"}}
        ) as response:
            async for frame in frames(response):
                if frame.event is None:
                    continue
                seen.append(frame.event["type"])
                if frame.event["type"] == "tool_call_request":
                    stopped = await client.post(f"/v1/tasks/{frame.event['task_id']}/stop")
                    assert stopped.status_code == 200
                    assert stopped.json()["status"] == "stopped"
                if frame.event["type"] == "task_finished":
                    final = frame.event["data"]

    assert seen[-1] == "task_finished" and "tool_call_result" not in seen
    assert (final["status"], final["is_manually_stopped"]) == ("stopped", True)
    assert final["finished_at"] is not None
    assert emu.stats()["running_turns"] == 0


async def test_stop_is_idempotent_on_a_finished_task(client: httpx.AsyncClient) -> None:
    task = (await client.post(path("echo", "sync"), json={"input": {"text": "done"}})).json()

    again = (await client.post(f"/v1/tasks/{task['id']}/stop")).json()

    assert (again["status"], again["is_manually_stopped"], again["result"]) == (
        "completed",
        False,
        "done",
    )


async def test_delete_cancels_and_removes_the_task(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    task = (await client.post(path("approver", "async"), json={"input": {"text": "x"}})).json()

    deleted = await client.delete(f"/v1/tasks/{task['id']}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(f"/v1/tasks/{task['id']}")).status_code == 404
    assert emu.stats()["running_turns"] == 0


async def test_version_is_recorded_on_the_task_and_validated(client: httpx.AsyncClient) -> None:
    draft = await client.post(
        path("echo", "sync"), params={"version": "draft"}, json={"input": {"text": "x"}}
    )
    latest = await client.post(path("echo", "sync"), json={"input": {"text": "x"}})
    bad = await client.post(
        path("echo", "sync"), params={"version": "v1!"}, json={"input": {"text": "x"}}
    )

    assert draft.json()["agent_version"] == "draft"
    assert latest.json()["agent_version"] == "1"
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "version"]


async def test_every_request_is_recorded_with_query_headers_and_body(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    body = {"input": {"text": "hi"}, "id": "t-rec", "source": "mcp"}
    await client.get("/v1/agents", params={"page": 1})
    async with client.stream(
        "POST", path("echo"), json=body, params={"version": "draft"}
    ) as response:
        await collect(response)
    await stream(client, "researcher", "other")

    listing, invoke = emu.requests[0], emu.requests[1]
    assert (listing.method, listing.path, listing.query, listing.status) == (
        "GET",
        "/v1/agents",
        {"page": "1"},
        200,
    )
    assert invoke.headers["x-api-key"] == emu.api_key
    assert (invoke.body, invoke.query, invoke.thread_id) == (body, {"version": "draft"}, "t-rec")
    assert emu.invokes(thread_id="t-rec") == [invoke]
    assert emu.invokes(agent="echo") == [invoke]
    assert len(emu.invokes()) == 2
