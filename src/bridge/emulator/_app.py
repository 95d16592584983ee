"""Routes of the emulated platform API (spec §2): health, agents, invokes, tasks, threads."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from bridge.emulator._agents import AgentSpec
from bridge.emulator._control import control_routes
from bridge.emulator._emulator import Emulator, TaskStateError
from bridge.emulator._middleware import CREATED_SCOPE_KEY, FAULT_SCOPE_KEY, EmulatorMiddleware
from bridge.emulator._schemas import (
    InvalidRequest,
    ListQuery,
    TaskListQuery,
    parse_body,
    parse_query,
)
from bridge.emulator._sse import EventStreamResponse
from bridge.emulator._state import TaskRecord

__all__ = ["create_app"]

_VERSION = re.compile(r"^(draft|latest|\d+)$")


def page(items: list[dict[str, Any]], query: ListQuery) -> dict[str, Any]:
    """The pagination envelope of every list endpoint."""
    start = (query.page - 1) * query.per_page
    return {
        "items": items[start : start + query.per_page],
        "total": len(items),
        "page": query.page,
        "per_page": query.per_page,
        "total_pages": math.ceil(len(items) / query.per_page),
    }


class _Api:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def _agent(self, request: Request) -> AgentSpec:
        spec = self.emu.agents.get(request.path_params["agent_id"])
        if spec is None:
            raise HTTPException(404, "Agent not found")
        return spec

    def _task(self, request: Request) -> TaskRecord:
        record = self.emu.tasks.get(request.path_params["task_id"])
        if record is None:
            raise HTTPException(404, "Task not found")
        return record

    async def health(self, request: Request) -> Response:
        return JSONResponse("ok")

    async def list_agents(self, request: Request) -> Response:
        query = parse_query(ListQuery, request.query_params)
        org = self.emu.organization_id
        return JSONResponse(page([spec.summary(org) for spec in self.emu.listed_agents()], query))

    async def list_agents_full(self, request: Request) -> Response:
        query = parse_query(ListQuery, request.query_params)
        org = self.emu.organization_id
        return JSONResponse(page([spec.detail(org) for spec in self.emu.listed_agents()], query))

    async def get_agent(self, request: Request) -> Response:
        return JSONResponse(self._agent(request).detail(self.emu.organization_id))

    async def list_tasks(self, request: Request) -> Response:
        return JSONResponse(self._tasks_page(request, None))

    async def list_agent_tasks(self, request: Request) -> Response:
        return JSONResponse(self._tasks_page(request, self._agent(request).id))

    def _tasks_page(self, request: Request, agent_id: str | None) -> dict[str, Any]:
        query = parse_query(TaskListQuery, request.query_params)
        agent_id = agent_id or query.agent_id
        items = [
            item
            for item in (record.to_list_item() for record in reversed(self.emu.tasks.values()))
            if (agent_id is None or item["agent_id"] == agent_id)
            and (query.user_id is None or item["user_id"] == query.user_id)
            and (query.status is None or item["status"] == query.status)
            and (query.parent_task_id is None or item["parent_task_id"] == query.parent_task_id)
            and (
                query.triggering_agent_id is None
                or item["triggering_agent_id"] == query.triggering_agent_id
            )
        ]
        return page(items, query)

    async def invoke(self, request: Request) -> Response:
        spec = self._agent(request)
        mode = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        version = request.query_params.get("version")
        if version is not None and not _VERSION.match(version):
            raise InvalidRequest(
                [
                    {
                        "loc": ["query", "version"],
                        "msg": "Input should be 'draft' or a version number",
                        "type": "value_error",
                    }
                ]
            )
        body = parse_body(await request.body())
        if body.id and self.emu.caller_ids == "refuse" and body.id not in self.emu.tasks:
            raise HTTPException(404, "Task not found")
        base_url = str(request.base_url).rstrip("/")
        record = self.emu.start_turn(spec, body, version=version, base_url=base_url)
        turn = record.latest
        created = request.scope.get(CREATED_SCOPE_KEY)
        if created is not None:
            created.set()
        if mode == "stream":
            return EventStreamResponse(self.emu, turn, request.scope.get(FAULT_SCOPE_KEY))
        if mode == "async":
            return JSONResponse(turn.events[0]["data"])
        await self.emu.wait_turn(turn)
        return JSONResponse(turn.events[-1]["data"])

    async def get_task(self, request: Request) -> Response:
        return JSONResponse(self._task(request).to_json())

    async def delete_task(self, request: Request) -> Response:
        self.emu.delete(self._task(request).id)
        return Response(status_code=204)

    async def stop_task(self, request: Request) -> Response:
        return JSONResponse(self.emu.stop(self._task(request).id).to_json())

    async def thread(self, request: Request) -> Response:
        return JSONResponse(self._task(request).messages)

    async def thread_full(self, request: Request) -> Response:
        return JSONResponse({"root": self._task(request).full_messages})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    return JSONResponse({"detail": exc.detail}, status_code=422)


async def _conflict(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def create_app(emulator: Emulator) -> ASGIApp:
    """The emulator's ASGI app: `/health`, `/v1/...`, and (unless `control=False`) the
    `/_emulator/...` control routes."""
    api = _Api(emulator)
    agent = "/v1/agents/{agent_id}"
    task = "/v1/tasks/{task_id}"
    routes: list[BaseRoute] = [
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/agents", api.list_agents, methods=["GET"]),
        Route("/v1/agents/full", api.list_agents_full, methods=["GET"]),
        Route(agent, api.get_agent, methods=["GET"]),
        Route(f"{agent}/tasks", api.list_agent_tasks, methods=["GET"]),
        Route(f"{agent}/invoke", api.invoke, methods=["POST"]),
        Route(f"{agent}/invoke/async", api.invoke, methods=["POST"]),
        Route(f"{agent}/invoke/stream", api.invoke, methods=["POST"]),
        Route("/v1/tasks", api.list_tasks, methods=["GET"]),
        Route(task, api.get_task, methods=["GET"]),
        Route(task, api.delete_task, methods=["DELETE"]),
        Route(f"{task}/stop", api.stop_task, methods=["POST"]),
        Route(f"{task}/thread", api.thread, methods=["GET"]),
        Route(f"{task}/thread/full", api.thread_full, methods=["GET"]),
    ]
    if emulator.control:
        routes.append(Mount("/_emulator", routes=control_routes(emulator)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Only when served with lifespan on and not already running (see `Emulator.running`).
        if emulator.is_running:
            yield
            return
        async with emulator.running():
            yield

    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            InvalidRequest: _invalid,
            TaskStateError: _conflict,
        },
        lifespan=lifespan,
    )
    return EmulatorMiddleware(app, emulator)
