"""Fault injection (queued and per-request header), the control API, and clean shutdown."""

from __future__ import annotations

from typing import Literal

import anyio
import httpx
import pytest

from bridge.emulator import Emulator, Fault, FaultSyntaxError, agent_id
from bridge.testing import open_emulator

from ._sse import Transcript, frames, path, stream


async def read_until_cut(response: httpx.Response) -> Transcript:
    """Read frames until the server cuts the connection (which must happen)."""
    transcript = Transcript()
    with pytest.raises(httpx.RemoteProtocolError):
        async for frame in frames(response):
            transcript.frames.append(frame)
    return transcript


async def test_a_503_fault_answers_with_retry_after_and_creates_no_task(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("status", status=503, retry_after=2))

    refused = await client.post(path("echo"), json={"input": {"text": "x"}})
    accepted = await client.post(path("echo", "sync"), json={"input": {"text": "x"}})

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert isinstance(refused.json()["detail"], str)
    assert accepted.status_code == 200
    assert list(emu.tasks) == [accepted.json()["id"]]
    assert [r.fault for r in emu.requests] == ["status=503;retry-after=2", None]


@pytest.mark.parametrize(
    ("header", "status", "retry_after"),
    [
        ("status=429", 429, "1"),
        ("status=429;retry-after=0.5", 429, "0.5"),
        ("status=500", 500, None),
    ],
)
async def test_the_fault_header_refuses_that_request_only(
    emu: Emulator, client: httpx.AsyncClient, header: str, status: int, retry_after: str | None
) -> None:
    refused = await client.post(
        path("echo", "sync"), json={"input": {"text": "x"}}, headers={"x-emulator-fault": header}
    )
    accepted = await client.post(path("echo", "sync"), json={"input": {"text": "x"}})

    assert refused.status_code == status
    assert refused.headers.get("retry-after") == retry_after
    assert accepted.status_code == 200
    assert len(emu.tasks) == 1


async def test_a_malformed_fault_header_answers_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents", headers={"x-emulator-fault": "explode=1"})

    assert response.status_code == 400
    with pytest.raises(FaultSyntaxError):
        Fault.parse("status=503;drop-after=1")


async def test_a_queued_fault_is_used_times_times_then_gone(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("status", status=500, path="/v1/tasks", times=2))

    statuses = [(await client.get("/v1/tasks")).status_code for _ in range(3)]
    agents = await client.get("/v1/agents")

    assert statuses == [500, 500, 200]
    assert agents.status_code == 200


async def test_a_fault_can_target_one_agent_and_one_thread(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("status", status=503, agent="researcher"))
    emu.inject(Fault("status", status=502, thread="t-target"))

    echo = await client.post(path("echo", "sync"), json={"input": {"text": "x"}})
    other_thread = await client.post(
        path("echo", "sync"), json={"input": {"text": "x"}, "id": "t-other"}
    )
    target = await client.post(
        path("echo", "sync"), json={"input": {"text": "x"}, "id": "t-target"}
    )
    researcher = await client.get(f"/v1/agents/{agent_id('researcher')}")

    assert [echo.status_code, other_thread.status_code, target.status_code] == [200, 200, 502]
    assert researcher.status_code == 503


async def test_a_dropped_stream_is_cut_and_the_turn_finishes_server_side(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("drop", after=3))

    with anyio.fail_after(5):
        async with client.stream(
            "POST", path("researcher"), json={"input": {"text": "x"}}
        ) as response:
            transcript = await read_until_cut(response)
        task_id = transcript.events[0]["task_id"]
        await emu.wait_for_status(task_id, "completed")

    assert transcript.types == ["task_created", "task_updated", "think"]
    polled = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert polled["status"] == "completed" and polled["result"]


async def test_drop_after_zero_cuts_right_after_the_headers(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(5):
        async with client.stream(
            "POST",
            path("echo"),
            json={"input": {"text": "x"}},
            headers={"x-emulator-fault": "drop"},
        ) as response:
            assert response.status_code == 200
            transcript = await read_until_cut(response)

    assert transcript.frames == []


async def test_a_stalled_stream_goes_silent_without_keepalives_then_is_cut(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    headers = {"x-emulator-fault": "stall-after=2;stall-for=0.3"}
    with anyio.fail_after(5):
        async with client.stream(
            "POST", path("echo"), json={"input": {"text": "x"}}, headers=headers
        ) as response:
            transcript = await read_until_cut(response)
        await emu.wait_for_status(transcript.events[0]["task_id"], "completed")

    assert transcript.types == ["task_created", "task_updated"]
    assert transcript.comments == []


async def test_a_stream_stalled_until_the_end_trips_the_client_read_timeout(emu: Emulator) -> None:
    emu.inject(Fault("stall", after=1))
    async with httpx.AsyncClient(
        base_url=emu.base_url,
        headers={"x-api-key": emu.api_key},
        timeout=httpx.Timeout(5, read=0.3),
    ) as client:
        with anyio.fail_after(5):
            async with client.stream(
                "POST", path("slow"), json={"input": {"text": "x"}}
            ) as response:
                seen: list[str] = []
                with pytest.raises(httpx.ReadTimeout):
                    async for frame in frames(response):
                        seen.append(frame.event["type"] if frame.event else "other")

    assert seen == ["task_created"]


async def test_garbage_is_written_into_the_stream_which_then_carries_on(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("garbage", after=1))

    transcript = await stream(client, "echo", "hello world")

    garbage = [index for index, frame in enumerate(transcript.frames) if frame.garbage is not None]
    assert garbage == [1]
    assert transcript.types[0] == "task_created" and transcript.types[-1] == "task_finished"
    assert transcript.final["result"] == "hello world"


async def test_a_dropped_sync_invoke_loses_the_response_but_runs_the_turn(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("drop", path="/invoke"))

    with anyio.fail_after(5):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(path("echo", "sync"), json={"input": {"text": "x"}, "id": "t-lost"})
        record = await emu.wait_for_status("t-lost", "completed")

    assert record.result == "x"


@pytest.mark.parametrize("mode", ["stream", "async", "sync"])
async def test_a_500_after_create_fault_starts_the_turn_then_answers_500(
    emu: Emulator, client: httpx.AsyncClient, mode: str
) -> None:
    emu.inject(Fault("status", status=500, create=True, path="/invoke"))

    with anyio.fail_after(5):
        refused = await client.post(path("echo", mode), json={"input": {"text": "x"}, "id": "t1"})
        record = await emu.wait_for_status("t1", "completed")

    assert refused.status_code == 500
    assert record.result == "x"
    assert [r.fault for r in emu.requests] == ["status=500;create"]


async def test_a_reset_fault_closes_the_connection_before_any_response_and_runs_nothing(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("reset", path="/invoke"))

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await client.post(path("echo"), json={"input": {"text": "x"}, "id": "t1"})

    assert emu.tasks == {}
    assert [r.fault for r in emu.requests] == ["reset"]


async def test_a_reset_after_create_fault_starts_the_turn_then_closes_the_connection(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    with anyio.fail_after(5):
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(
                path("echo"),
                json={"input": {"text": "x"}, "id": "t1"},
                headers={"x-emulator-fault": "reset;create"},
            )
        record = await emu.wait_for_status("t1", "completed")

    assert record.result == "x"
    assert Fault.parse("status=502;create") == Fault("status", status=502, create=True, path="")


async def test_a_create_fault_on_a_refused_invoke_answers_its_status_and_creates_nothing(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    emu.inject(Fault("status", status=500, create=True, path="/invoke"))

    refused = await client.post(path("echo"), json={"input": {"nope": 1}, "id": 5})

    assert refused.status_code == 500
    assert emu.tasks == {}


@pytest.mark.parametrize(
    ("caller_ids", "status", "kept"),
    [("keep", 200, True), ("ignore", 200, False), ("refuse", 404, False)],
)
async def test_caller_ids_decide_what_an_id_naming_no_task_starts(
    caller_ids: Literal["keep", "ignore", "refuse"], status: int, kept: bool
) -> None:
    async with (
        open_emulator(caller_ids=caller_ids) as emu,
        httpx.AsyncClient(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as http,
    ):
        body = {"input": {"text": "x"}, "id": "mine"}
        response = await http.post(path("echo", "async"), json=body)
        assert response.status_code == status
        started = len(emu.tasks)
        named = "mine" in emu.tasks
    assert started == (status == 200)
    assert named == kept


async def test_garbage_replaces_a_plain_json_body(emu: Emulator, client: httpx.AsyncClient) -> None:
    emu.inject(Fault("garbage", path="/v1/agents"))

    response = await client.get("/v1/agents")

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


async def test_the_control_api_drives_an_emulator_from_outside(emu: Emulator) -> None:
    async with httpx.AsyncClient(
        base_url=emu.base_url, headers={"x-api-key": emu.api_key}
    ) as client:
        queued = await client.post(
            "/_emulator/faults", json={"kind": "status", "status": 429, "times": 1}
        )
        listed = (await client.get("/_emulator/faults")).json()
        limited = await client.get("/v1/agents")
        by_header = await client.post(
            "/_emulator/faults", json={"header": "drop-after=1", "agent": "echo"}
        )
        bad = await client.post("/_emulator/faults", json={"kind": "meltdown"})
        added = await client.post(
            "/_emulator/agents", json={"name": "remote", "script": "approver"}
        )
        task = (await client.post(path("remote", "async"), json={"input": {"text": "x"}})).json()
        paused = await client.get(
            f"/_emulator/tasks/{task['id']}/wait", params={"status": "paused"}
        )
        resumed = await client.post(f"/_emulator/tasks/{task['id']}/resume")
        finished = await client.get(f"/_emulator/tasks/{task['id']}/wait")
        inspected = (await client.get(f"/_emulator/tasks/{task['id']}")).json()
        recorded = (await client.get("/_emulator/requests", params={"path": "/invoke"})).json()
        stats = (await client.get("/_emulator/stats")).json()
        removed = await client.delete("/_emulator/agents/remote")

    assert queued.status_code == 201 and listed[0]["status"] == 429
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert by_header.status_code == 201 and bad.status_code == 422
    assert added.status_code == 201 and added.json()["id"] == agent_id("remote")
    assert paused.json()["status"] == "paused" and resumed.status_code == 200
    assert finished.json()["status"] == "completed"
    assert inspected["turns"][0]["source"] == "api" and inspected["max_concurrent_turns"] == 1
    assert [r["path"] for r in recorded] == [path("remote", "async")]
    assert stats["tasks"] == 1 and stats["pending_faults"] == 1 and stats["conflicts"] == 0
    assert removed.status_code == 204 and "remote" not in {a.name for a in emu.agents.values()}
    assert not any(r.path.startswith("/_emulator") for r in emu.requests)


async def test_shutting_down_ends_streams_that_are_still_open() -> None:
    endings: dict[str, str] = {}

    async def read(
        client: httpx.AsyncClient, url: str, headers: dict[str, str], task_id: str
    ) -> None:
        body = {"input": {"text": "x"}, "id": task_id}
        async with client.stream("POST", url, json=body, headers=headers) as response:
            try:
                async for frame in frames(response):
                    if frame.event is not None:
                        endings[task_id] = frame.event["data"].get("status", "")
            except httpx.RemoteProtocolError:
                endings[task_id] = "cut"

    with anyio.fail_after(5):
        # Exit order: the emulator first, then the task group waits for both readers.
        async with (
            httpx.AsyncClient(timeout=5) as client,
            anyio.create_task_group() as tg,
            open_emulator(keepalive_interval=0.05) as emu,
        ):
            key = {"x-api-key": emu.api_key}
            stall = {**key, "x-emulator-fault": "stall-after=1"}
            tg.start_soon(read, client, emu.base_url + path("approver"), key, "t-approver")
            tg.start_soon(read, client, emu.base_url + path("slow"), stall, "t-stalled")
            await emu.wait_for_status("t-approver", "paused")
            await emu.wait_for_status("t-stalled", "executing")

    assert endings == {"t-approver": "error", "t-stalled": "cut"}
    assert emu.stats()["running_turns"] == 0
