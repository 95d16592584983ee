"""What the A2A surface does like every other: parts → input, metrics, readiness, doctor,
cards that follow the agent list."""

from __future__ import annotations

import anyio
import httpx
import pytest
from a2a.types.a2a_pb2 import Part
from a2a.utils.errors import InvalidParamsError
from bridge_a2a import A2AAdapter
from bridge_a2a._config import A2AConfig
from google.protobuf.struct_pb2 import Value

from bridge.emulator import Emulator
from tests.a2a.conftest import (
    TOKENS,
    Bridge,
    a2a_client,
    answer_of,
    bridge_settings,
    final_task,
    serving,
    user_message,
)

pytestmark = pytest.mark.anyio


async def test_file_bytes_are_rehosted_and_data_parts_become_additional_context(
    bridge: Bridge, emulator: Emulator
) -> None:
    request = user_message("summarise the attachment")
    request.message.parts.append(
        Part(raw=b"quarterly numbers", filename="q3.txt", media_type="text/plain")
    )
    data = Value()
    data.struct_value.update({"region": "EMEA"})
    request.message.parts.append(Part(data=data))
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        task = await final_task(client, request)
    assert answer_of(task) == "summarise the attachment"
    body = emulator.invokes(agent="echo")[-1].json
    [url] = body["input"]["files"]
    assert url.startswith(f"{bridge.base}/files/")
    assert '"region": "EMEA"' in body["additional_context"]
    async with httpx.AsyncClient() as http:
        served = await http.get(url)
    assert served.content == b"quarterly numbers"


async def test_public_https_file_urls_pass_through(bridge: Bridge, emulator: Emulator) -> None:
    request = user_message("read the report")
    request.message.parts.append(Part(url="https://93.184.216.34/report.pdf"))
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        await final_task(client, request)
    body = emulator.invokes(agent="echo")[-1].json
    assert body["input"]["files"] == ["https://93.184.216.34/report.pdf"]


async def test_file_urls_must_be_public_https(bridge: Bridge, emulator: Emulator) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        for url in ("http://example.com/a.pdf", "https://127.0.0.1/a.pdf", "file:///etc/passwd"):
            request = user_message("read this")
            request.message.parts.append(Part(url=url))
            with pytest.raises(InvalidParamsError):
                await final_task(client, request)
    assert emulator.invokes(agent="echo") == []


async def test_metrics_count_turns_by_source_and_readyz_checks_the_adapter_and_its_tasks(
    bridge: Bridge,
) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        await final_task(client, user_message("count me"))
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{bridge.base}/metrics")).text
        ready = await http.get(f"{bridge.base}/readyz")
    started = [
        line for line in metrics.splitlines() if line.startswith("bridge_turns_started_total{")
    ]
    assert any('source="a2a"' in line and line.endswith(" 1.0") for line in started)
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["adapter:a2a"] == "ok"
    assert checks["a2a.tasks"] == "ok"


async def test_cards_follow_the_agent_list(emulator: Emulator) -> None:
    async with serving(emulator, tokens=TOKENS, refresh_interval=0.05) as bridge:
        emulator.add_agent("newcomer")
        emulator.remove_agent("writer")
        async with httpx.AsyncClient() as http:
            with anyio.fail_after(10):
                while True:
                    names = {
                        a["name"] for a in (await http.get(f"{bridge.base}/a2a/")).json()["agents"]
                    }
                    if "newcomer" in names:
                        break
            card = await http.get(f"{bridge.agent_url('newcomer')}.well-known/agent-card.json")
            gone = await http.get(f"{bridge.agent_url('writer')}.well-known/agent-card.json")
        async with a2a_client(bridge.agent_url("newcomer"), streaming=False) as client:
            task = await final_task(client, user_message("hello, newcomer"))
    assert "writer" not in names
    assert card.json()["name"] == "newcomer"
    assert gone.status_code == 404
    assert answer_of(task) == "hello, newcomer"


async def test_doctor_reports_exposure_and_the_task_store(emulator: Emulator, tmp_path) -> None:
    local = bridge_settings(emulator, f"sqlite:///{tmp_path / 'b.db'}")
    open_settings = local.model_copy(
        update={"http": local.http.model_copy(update={"host": "0.0.0.0"})}
    )
    redis = bridge_settings(emulator, "redis://127.0.0.1:1/0")
    fine = await A2AAdapter.doctor(A2AConfig(), local)
    exposed = await A2AAdapter.doctor(A2AConfig(), open_settings)
    guarded = await A2AAdapter.doctor(A2AConfig.model_validate({"tokens": TOKENS}), open_settings)
    unshared = await A2AAdapter.doctor(A2AConfig(), redis)
    assert [(c.name, c.ok) for c in fine] == [("a2a.auth", True), ("a2a.tasks", True)]
    assert exposed[0].ok is False and "tokens" in exposed[0].detail
    assert guarded[0].ok is True
    assert unshared[1].ok is False and "task_store" in unshared[1].detail
