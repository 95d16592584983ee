"""The adapter seam: loading by entry point, per-adapter config validation, the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any, ClassVar

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge import errors
from bridge.adapters import AdapterConfig, build_adapter, enabled_adapters, load_adapter_class
from bridge.config import load_settings
from bridge.conversations import ConversationKey, Message
from bridge.events import TaskCreated, TaskFinished
from bridge.runtime import Runtime, serve
from bridge.testing import check_adapter_contract, open_emulator


class EchoLineConfig(AdapterConfig):
    agent: str = "echo"


class EchoLineAdapter:
    """A tiny adapter: POST /line {"text"} runs a turn and answers with the result or the error."""

    name: ClassVar[str] = "line"
    config_model: ClassVar[type[AdapterConfig]] = EchoLineConfig

    def __init__(self, config: EchoLineConfig) -> None:
        self.config = config
        self.created = anyio.Event()  # set when a turn reached the platform

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        agent = await runtime.client.find_agent(self.config.agent)

        async def line(request: Request) -> Response:
            body = await request.json()
            key = ConversationKey("line", "local", body.get("thread", "t"))
            try:
                async with runtime.conversations.turn(
                    key, Message(text=body["text"]), agent_id=agent.id, source="api"
                ) as turn:
                    async for event in turn:
                        if isinstance(event, TaskCreated):
                            self.created.set()
                        if isinstance(event, TaskFinished):
                            return JSONResponse({"answer": event.task.result})
            except errors.UpstreamError as exc:
                return JSONResponse({"error": f"the agent is unavailable: {type(exc).__name__}"})
            return JSONResponse({"error": "no answer"})

        runtime.http.add_route("/line", line, methods=["POST"])
        task_status.started()
        await anyio.sleep_forever()


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(api_key="k") as emu:
        yield emu


def settings_for(emulator: Any, **tables: Any) -> Any:
    return load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": "k", "max_attempts": 1},
            "http": {"port": 0},
            "store": {"url": "memory://"},
            "adapters": tables,
        },
        environ={},
    )


async def test_an_adapter_under_serve_answers_through_its_route(emulator: Any) -> None:
    settings = settings_for(emulator)
    async with anyio.create_task_group() as group:
        adapter = EchoLineAdapter(EchoLineConfig())
        runtime = await group.start(partial(serve, settings, adapters=[adapter]))
        async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
            answer = (await http.post("/line", json={"text": "hi"})).json()
            health = await http.get("/healthz")
        group.cancel_scope.cancel()
    assert answer == {"answer": "hi"}
    assert health.status_code == 200
    assert emulator.invokes()[-1].body["source"] == "api"


async def test_the_contract_kit_accepts_an_adapter_that_renders_errors(emulator: Any) -> None:
    replies: list[dict[str, Any]] = []

    async def trigger(runtime: Runtime) -> None:
        async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
            replies.append((await http.post("/line", json={"text": "hi"})).json())

    await check_adapter_contract(
        EchoLineAdapter(EchoLineConfig()),
        settings_for(emulator),
        emulator=emulator,
        trigger=trigger,
    )
    assert replies == [{"error": "the agent is unavailable: ServerError"}]


async def test_the_contract_kit_rejects_an_adapter_that_raises(emulator: Any) -> None:
    class Raising(EchoLineAdapter):
        async def serve(
            self, runtime: Runtime, *, task_status: Any = anyio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            raise errors.PlatformError("boom")

    with pytest.raises(BaseExceptionGroup) as caught:
        await check_adapter_contract(
            Raising(EchoLineConfig()),
            settings_for(emulator),
            emulator=emulator,
            trigger=lambda runtime: anyio.lowlevel.checkpoint(),
        )
    assert caught.group_contains(errors.PlatformError)


def test_installed_adapters_load_by_entry_point_name() -> None:
    for name in ("mcp", "slack", "telegram"):
        cls = load_adapter_class(name)
        assert cls.name == name
        assert issubclass(cls.config_model, AdapterConfig)


def test_an_unknown_adapter_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        load_adapter_class("fax")
    assert caught.value.key == "adapters.fax"


def test_an_unknown_key_in_an_adapter_table_names_the_key() -> None:
    settings = load_settings(None, overrides={"adapters": {"line": {"agnet": "echo"}}}, environ={})
    with pytest.raises(errors.ConfigError) as caught:
        build_adapter(settings, "line", EchoLineAdapter)
    assert caught.value.key == "adapters.line.agnet"


def test_with_no_adapter_table_serve_runs_the_mcp_adapter() -> None:
    settings = load_settings(None, environ={})
    assert [adapter.name for adapter in enabled_adapters(settings)] == ["mcp"]
