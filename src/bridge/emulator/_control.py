"""`/_emulator/...` control routes: drive and inspect an emulator from another process.

No API key is needed here, and these requests are neither recorded nor subject to faults.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.emulator._agents import AgentSpec
from bridge.emulator._faults import Fault, FaultSyntaxError

if TYPE_CHECKING:
    from bridge.emulator._emulator import Emulator

__all__ = ["control_routes"]


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise HTTPException(400, "Body must be a JSON object") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "Body must be a JSON object")
    return data


class _Control:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def _task_id(self, request: Request) -> str:
        task_id: str = request.path_params["task_id"]
        if task_id not in self.emu.tasks:
            raise HTTPException(404, "Task not found")
        return task_id

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.emu.stats())

    async def requests(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        thread = request.query_params.get("thread_id")
        return JSONResponse(
            [
                recorded.to_json()
                for recorded in self.emu.requests
                if path in recorded.path and (thread is None or recorded.thread_id == thread)
            ]
        )

    async def clear_requests(self, request: Request) -> Response:
        self.emu.clear_requests()
        return Response(status_code=204)

    async def faults(self, request: Request) -> Response:
        return JSONResponse([fault.to_json() for fault in self.emu.faults.pending()])

    async def add_fault(self, request: Request) -> Response:
        """Body: the `Fault` fields as JSON, or `{"header": "<x-emulator-fault syntax>"}`."""
        data = await _json_body(request)
        try:
            if "header" in data:
                fault = Fault.parse(str(data.pop("header")))
                fault.path = None
                for key, value in data.items():
                    setattr(fault, key, value)
            else:
                fault = Fault.from_json(data)
        except FaultSyntaxError as exc:
            raise HTTPException(422, str(exc)) from None
        self.emu.inject(fault)
        return JSONResponse({"pending": len(self.emu.faults)}, status_code=201)

    async def clear_faults(self, request: Request) -> Response:
        self.emu.faults.clear()
        return Response(status_code=204)

    async def task(self, request: Request) -> Response:
        record = self.emu.tasks[self._task_id(request)]
        turns = [
            {
                "number": turn.number,
                "agent_id": turn.agent_id,
                "input": turn.input,
                "source": turn.source,
                "user": turn.user,
                "request": turn.request,
                "status": turn.status,
                "result": turn.result,
                "events": turn.events,
            }
            for turn in record.turns
        ]
        return JSONResponse(
            {
                "task": record.to_json(),
                "turns": turns,
                "max_concurrent_turns": self.emu.max_concurrent_turns(record.id),
            }
        )

    async def wait(self, request: Request) -> Response:
        """Long-poll until the task reaches `?status=` (repeatable; default any terminal)."""
        statuses = request.query_params.getlist("status")
        timeout = float(request.query_params.get("timeout", "10"))
        with anyio.move_on_after(timeout):
            record = await self.emu.wait_for_status(request.path_params["task_id"], *statuses)
            return JSONResponse(record.to_json())
        raise HTTPException(408, "Timed out waiting for the task")

    async def resume(self, request: Request) -> Response:
        data = await _json_body(request)
        task_id = self._task_id(request)
        return JSONResponse(self.emu.resume(task_id, approved=bool(data.get("approved", True))))

    async def complete_login(self, request: Request) -> Response:
        return JSONResponse(self.emu.complete_login(self._task_id(request)))

    async def login_page(self, request: Request) -> Response:
        """The `url` of a `login_required` auth event: opening it completes the login."""
        self.emu.complete_login(self._task_id(request))
        return HTMLResponse("<!doctype html><title>Signed in</title><p>You are signed in.</p>")

    async def add_agent(self, request: Request) -> Response:
        """Body: `{"name": ..., "description": ..., "script": "<built-in script name>"}`."""
        data = await _json_body(request)
        try:
            spec = AgentSpec(
                name=str(data["name"]),
                description=str(data.get("description", "")),
                script=str(data.get("script", "echo")),
            )
        except (KeyError, ValueError) as exc:
            raise HTTPException(422, f"Bad agent: {exc}") from None
        spec = self.emu.add_agent(spec)
        return JSONResponse(spec.summary(self.emu.organization_id), status_code=201)

    async def remove_agent(self, request: Request) -> Response:
        try:
            self.emu.remove_agent(request.path_params["agent"])
        except KeyError:
            raise HTTPException(404, "Agent not found") from None
        return Response(status_code=204)


def control_routes(emulator: Emulator) -> list[BaseRoute]:
    """Routes mounted at `/_emulator`."""
    c = _Control(emulator)
    task = "/tasks/{task_id}"
    return [
        Route("/stats", c.stats, methods=["GET"]),
        Route("/requests", c.requests, methods=["GET"]),
        Route("/requests", c.clear_requests, methods=["DELETE"]),
        Route("/faults", c.faults, methods=["GET"]),
        Route("/faults", c.add_fault, methods=["POST"]),
        Route("/faults", c.clear_faults, methods=["DELETE"]),
        Route(task, c.task, methods=["GET"]),
        Route(f"{task}/wait", c.wait, methods=["GET"]),
        Route(f"{task}/resume", c.resume, methods=["POST"]),
        Route(f"{task}/complete-login", c.complete_login, methods=["POST"]),
        Route("/login/{task_id}", c.login_page, methods=["GET"]),
        Route("/agents", c.add_agent, methods=["POST"]),
        Route("/agents/{agent}", c.remove_agent, methods=["DELETE"]),
    ]
