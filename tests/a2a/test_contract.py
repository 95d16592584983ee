"""The A2A adapter keeps the core's adapter contract (bridge.testing.check_adapter_contract)."""

from __future__ import annotations

from a2a.types.a2a_pb2 import TaskState
from bridge_a2a import A2AAdapter
from bridge_a2a._config import A2AConfig

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import check_adapter_contract

from .conftest import TOKENS, a2a_client, bridge_settings, final_task, user_message


async def test_the_adapter_keeps_the_adapter_contract_and_renders_upstream_failures(
    emulator: Emulator,
) -> None:
    adapter = A2AAdapter(A2AConfig.model_validate({"tokens": TOKENS}))
    states: list[int] = []

    async def trigger(runtime: Runtime) -> None:
        async with a2a_client(f"{runtime.http.base_url}/a2a/echo/") as client:
            task = await final_task(client, user_message("are you up?"))
        states.append(task.status.state)

    await check_adapter_contract(
        adapter, bridge_settings(emulator), emulator=emulator, trigger=trigger
    )
    assert states == [TaskState.TASK_STATE_FAILED]
