"""Push notifications: configs (create, get, list, delete) and webhook delivery to a local
server, with the config's credentials; loopback webhooks refused unless allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from a2a.types.a2a_pb2 import (
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.emulator import Emulator
from bridge.http import HttpApp
from tests.a2a.conftest import (
    TOKENS,
    Bridge,
    a2a_client,
    answer_of,
    final_task,
    serving,
    user_message,
)

pytestmark = pytest.mark.anyio

HOOK_SECRET = "TEST-TOKEN-webhook"


@dataclass
class Webhook:
    """A local webhook receiver on 127.0.0.1:<free port>."""

    url: str = ""
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.json()))
        self.changed.set()
        self.changed = anyio.Event()
        return JSONResponse({"ok": True})

    def states(self) -> list[str]:
        found = []
        for _, body in self.received:
            status = (body.get("statusUpdate") or body.get("task") or {}).get("status", {})
            if "state" in status:
                found.append(status["state"])
        return found


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    app = HttpApp()
    app.add_route("/hook", hook.endpoint, methods=["POST"])
    async with anyio.create_task_group() as group:
        port = await group.start(app.serve, "127.0.0.1", 0)
        hook.url = f"http://127.0.0.1:{port}/hook"
        yield hook
        group.cancel_scope.cancel()


def push_config(url: str) -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(
        url=url,
        token="per-task-token",
        authentication=AuthenticationInfo(scheme="Bearer", credentials=HOOK_SECRET),
    )


async def test_task_updates_are_posted_to_the_webhook_with_its_credentials(
    bridge: Bridge, webhook: Webhook
) -> None:
    async with a2a_client(bridge.agent_url("slow"), streaming=False) as client:
        request = user_message("tell me later")
        request.configuration.return_immediately = True
        request.configuration.task_push_notification_config.CopyFrom(push_config(webhook.url))
        task = await final_task(client, request)
        with anyio.fail_after(15):
            while "TASK_STATE_COMPLETED" not in webhook.states():
                await webhook.changed.wait()
    headers, _ = webhook.received[-1]
    assert headers["authorization"] == f"Bearer {HOOK_SECRET}"
    assert headers["x-a2a-notification-token"] == "per-task-token"
    assert "TASK_STATE_WORKING" in webhook.states()
    bodies = [body for _, body in webhook.received]
    assert all(
        (body.get("statusUpdate") or body.get("artifactUpdate") or body.get("task"))["taskId"]
        == task.id
        if "task" not in body
        else body["task"]["id"] == task.id
        for body in bodies
    )


async def test_push_configs_can_be_created_read_listed_and_deleted(
    bridge: Bridge, webhook: Webhook
) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        task = await final_task(client, user_message("configure me"))
        config = push_config(webhook.url)
        config.task_id = task.id
        created = await client.create_task_push_notification_config(config)
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id=created.id)
        )
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=created.id)
        )
        after = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
    assert got.url == webhook.url
    assert [c.id for c in listed.configs] == [created.id]
    assert list(after.configs) == []


async def test_loopback_and_private_webhooks_are_refused_unless_allowed(
    emulator: Emulator, webhook: Webhook
) -> None:
    async with (
        serving(emulator, tokens=TOKENS, allow_private_webhooks=False) as bridge,
        a2a_client(bridge.agent_url("echo"), streaming=False) as client,
    ):
        task = await final_task(client, user_message("no webhooks here"))
        for url in (webhook.url, "http://10.1.2.3/hook", "http://169.254.169.254/latest"):
            config = push_config(url)
            config.task_id = task.id
            with pytest.raises(InvalidParamsError):
                await client.create_task_push_notification_config(config)
        request = user_message("sneak one in")
        request.configuration.task_push_notification_config.CopyFrom(push_config(webhook.url))
        with pytest.raises(InvalidParamsError):
            await final_task(client, request)
    assert webhook.received == []


async def test_an_end_nobody_came_back_for_is_written_to_the_task_and_pushed(
    emulator: Emulator, webhook: Webhook
) -> None:
    async with (
        serving(emulator, tokens=TOKENS, interrupted_timeout=0.2) as bridge,
        a2a_client(bridge.agent_url("approver"), streaming=False) as client,
    ):
        request = user_message("archive the project")
        request.configuration.task_push_notification_config.CopyFrom(push_config(webhook.url))
        paused = await final_task(client, request)
        assert paused.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        [upstream] = list(emulator.tasks)
        emulator.resume(upstream, approved=True)
        with anyio.fail_after(10):
            while "TASK_STATE_COMPLETED" not in webhook.states():
                await webhook.changed.wait()
        done = await client.get_task(GetTaskRequest(id=paused.id))
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(done) == "Approved. Done: archive the project"
