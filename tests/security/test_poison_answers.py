"""One hostile answer never stops the process: it is shown as plain text, and a record that
keeps failing delivery is quarantined instead of crash-looping recovery."""

from __future__ import annotations

from pathlib import Path

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.chat import UserGate
from bridge.client import AgentClient
from bridge.config import ConversationsConfig, UpstreamConfig, load_settings
from bridge.conversations import Conversations
from bridge.doctor import run_doctor
from bridge.emulator import Emulator
from bridge.errors import UpstreamError
from bridge.metrics import Metrics
from bridge.models import Task
from bridge.stores import InFlightTurn, open_store
from tests.telegram.conftest import BOB, running_bridge

POISON = "*" * 600 + "a" + "*" * 600
FAST_RECOVERY = {"lock_lease": 1.0, "recovery_interval": 0.1}


async def test_a_poison_answer_is_shown_as_plain_text_and_the_next_message_is_answered(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    fake = telegram
    async with running_bridge(emulator, fake):
        fake.queue(BOB.says(fake, BOB.id, POISON))
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any("a" in m.text for m in fake.sent(BOB.id)))
        fake.queue(BOB.says(fake, BOB.id, "still there?"))
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any(m.text == "still there?" for m in fake.sent(BOB.id)))
    shown = "".join(m.text for m in fake.sent(BOB.id) if "*" in m.text)
    assert shown.count("*") == 1200
    assert shown.replace("*", "") == "a"


async def test_a_restart_with_a_poison_record_in_the_ledger_delivers_it_and_keeps_serving(
    emulator: Emulator, telegram: FakeBotAPI, tmp_path: Path
) -> None:
    fake = telegram
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    async with (
        AgentClient(UpstreamConfig(base_url=emulator.base_url, api_key=emulator.api_key)) as client,
        client.stream(emulator.agent("echo").id, POISON, source="telegram") as run,
    ):
        task = await run.result()
    async with open_store(store_url) as store:
        await store.record_turn(
            InFlightTurn(
                turn_id="poison",
                key=f"telegram|{BOB.id}|chat",
                adapter="telegram",
                agent_id=emulator.agent("echo").id,
                text=POISON,
                source="telegram",
                task_id=task.id,
                holder="a-replica-that-died",
                reply={"chat_id": BOB.id, "private": True},
            )
        )
    async with running_bridge(emulator, fake, store=store_url, conversations=FAST_RECOVERY):
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any("*" in m.text for m in fake.sent(BOB.id)))
        fake.queue(BOB.says(fake, BOB.id, "hello after the restart"))
        with anyio.fail_after(15):
            await fake.wait_for(
                lambda: any(m.text == "hello after the restart" for m in fake.sent(BOB.id))
            )
    async with open_store(store_url) as store:
        assert await store.get_turn("poison") is None


async def test_a_record_whose_delivery_keeps_failing_is_quarantined_not_retried(
    emulator: Emulator,
) -> None:
    metrics = Metrics()
    calls: list[str] = []

    async def deliver(record: InFlightTurn, task: Task | None, error: UpstreamError | None) -> None:
        calls.append(record.turn_id)
        raise RuntimeError("the renderer blew up")

    async with (
        AgentClient(UpstreamConfig(base_url=emulator.base_url, api_key=emulator.api_key)) as client,
        open_store("memory://") as store,
    ):
        async with client.stream(emulator.agent("echo").id, "hi", source="telegram") as run:
            task = await run.result()
        service = Conversations(
            client, store, ConversationsConfig(max_delivery_attempts=3), metrics=metrics
        )
        await store.record_turn(
            InFlightTurn(
                turn_id="t1",
                key="telegram|1|chat",
                adapter="telegram",
                agent_id=emulator.agent("echo").id,
                text="hi",
                source="telegram",
                task_id=task.id,
                holder="dead",
            )
        )
        for _ in range(5):
            assert await service.recover("telegram", deliver) == 0
        record = await store.get_turn("t1")
    assert calls == ["t1", "t1", "t1"]
    assert record is not None and record.quarantined and record.attempts == 3
    assert record.last_error == "RuntimeError: the renderer blew up"
    exposition = metrics.exposition().decode()
    assert 'bridge_quarantined_turns_total{adapter="telegram"} 1.0' in exposition
    assert 'bridge_turn_failures_total{adapter="telegram",stage="recover"} 3.0' in exposition


async def test_bridge_doctor_names_each_quarantined_turn(
    emulator: Emulator, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    async with open_store(store_url) as store:
        await store.record_turn(
            InFlightTurn(
                turn_id="poison",
                key="telegram|42|chat",
                adapter="telegram",
                agent_id="echo",
                text="hi",
                source="telegram",
                task_id="task-1",
                attempts=3,
                quarantined=True,
                last_error="RuntimeError: the renderer blew up",
            )
        )
    settings = load_settings(
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": emulator.api_key},
            "store": {"url": store_url},
        },
        environ={},
    )
    [ledger] = [check for check in await run_doctor(settings) if check.name == "ledger"]
    assert not ledger.ok
    assert "telegram|42|chat" in ledger.detail and "task-1" in ledger.detail


async def test_the_per_user_bucket_tracks_a_bounded_number_of_users() -> None:
    gate = UserGate(limit=2, window=60.0, tracked=100)
    assert [await gate.admit("mallory") for _ in range(3)] == [True, True, False]
    assert all([await gate.admit(f"sock-{index}") for index in range(5_000)])
    assert len(gate._buckets) == 100
