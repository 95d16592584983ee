"""Fixtures: the platform emulator, the bridge serving A2A (one or two replicas), SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, Task
from bridge_a2a import A2AAdapter
from bridge_a2a._config import A2AConfig

from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

API_KEY = "test-key"
TOKEN = "TEST-TOKEN-alice"
OTHER_TOKEN = "TEST-TOKEN-bob"
TOKENS = [
    {"principal": "alice@example.com", "token": TOKEN},
    {"principal": "bob@example.com", "token": OTHER_TOKEN},
]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(
        api_key=API_KEY, keepalive_interval=0.05, slow_silence=1.0, login_timeout=5.0
    ) as emu:
        yield emu


def bridge_settings(
    emulator: Emulator,
    store: str = "memory://",
    *,
    public_url: str | None = None,
    **conversations: Any,
) -> Any:
    http: dict[str, Any] = {"host": "127.0.0.1", "port": 0}
    if public_url:
        http["public_url"] = public_url
    return load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": API_KEY, "idle_timeout": 10.0},
            "store": {"url": store},
            "http": http,
            "conversations": conversations,
        },
        environ={},
    )


@dataclass
class Bridge:
    runtime: Runtime
    adapter: A2AAdapter

    @property
    def base(self) -> str:
        return self.runtime.http.base_url

    def agent_url(self, name: str) -> str:
        return f"{self.base}/a2a/{name}/"


@asynccontextmanager
async def serving(
    emulator: Emulator,
    *,
    store: str = "memory://",
    conversations: Any = None,
    public_url: str | None = None,
    **config: Any,
) -> AsyncIterator[Bridge]:
    """`bridge serve` with only the A2A adapter, on 127.0.0.1:<free port>."""
    options: dict[str, Any] = {"allow_private_webhooks": True, **config}
    adapter = A2AAdapter(A2AConfig.model_validate(options))
    settings = bridge_settings(emulator, store, public_url=public_url, **(conversations or {}))

    async def run(*, task_status: anyio.abc.TaskStatus[Runtime]) -> None:
        await serve(settings, adapters=[adapter], task_status=task_status)

    async with anyio.create_task_group() as group:
        runtime = await group.start(run)
        yield Bridge(runtime, adapter)
        group.cancel_scope.cancel()


@pytest.fixture
async def bridge(emulator: Emulator) -> AsyncIterator[Bridge]:
    async with serving(emulator, tokens=TOKENS) as served:
        yield served


@asynccontextmanager
async def a2a_client(
    url: str,
    token: str | None = TOKEN,
    *,
    streaming: bool = True,
    polling: bool = False,
    bindings: tuple[str, ...] = ("JSONRPC", "HTTP+JSON"),
) -> AsyncIterator[Client]:
    """The official SDK client for the agent at `url`, found through its card."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(headers=headers, timeout=30.0))
        config = ClientConfig(
            streaming=streaming,
            polling=polling,
            httpx_client=http,
            supported_protocol_bindings=list(bindings),
        )
        client = await ClientFactory(config).create_from_url(url)
        try:
            yield client
        finally:
            await client.close()


def user_message(text: str, *, context_id: str = "", task_id: str = "") -> SendMessageRequest:
    import uuid

    return SendMessageRequest(
        message=Message(
            message_id=uuid.uuid4().hex,
            role=Role.ROLE_USER,
            parts=[Part(text=text)],
            context_id=context_id,
            task_id=task_id,
        )
    )


def answer_of(task: Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


async def final_task(client: Client, request: SendMessageRequest) -> Task:
    """Send; the task as the response left it (a stream's end is read back with GetTask)."""
    responses = [response async for response in client.send_message(request)]
    assert responses, "no response"
    if responses[-1].HasField("task"):
        return responses[-1].task
    task_id = next(r.task.id for r in responses if r.HasField("task"))
    return await client.get_task(GetTaskRequest(id=task_id))
