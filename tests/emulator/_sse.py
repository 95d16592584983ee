"""Reading the emulator's SSE responses frame by frame, as a strict client would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.emulator import agent_id


@dataclass
class Frame:
    """One SSE frame: a JSON event, a `:` comment, or a data line that is not JSON."""

    event: dict[str, Any] | None = None
    comment: str | None = None
    garbage: str | None = None


@dataclass
class Transcript:
    frames: list[Frame] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [frame.event for frame in self.frames if frame.event is not None]

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    @property
    def comments(self) -> list[str]:
        return [frame.comment for frame in self.frames if frame.comment is not None]

    @property
    def text(self) -> str:
        return "".join(event["data"] for event in self.events if event["type"] == "chunk")

    @property
    def final(self) -> dict[str, Any]:
        assert self.events[-1]["type"] == "task_finished"
        task: dict[str, Any] = self.events[-1]["data"]
        return task


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    async for line in response.aiter_lines():
        if line == "":
            continue
        if line.startswith(":"):
            yield Frame(comment=line[1:].strip())
        elif line.startswith("data: "):
            try:
                yield Frame(event=json.loads(line[len("data: ") :]))
            except json.JSONDecodeError:
                yield Frame(garbage=line)
        else:
            yield Frame(garbage=line)


async def collect(response: httpx.Response) -> Transcript:
    transcript = Transcript()
    async for frame in frames(response):
        transcript.frames.append(frame)
    return transcript


def path(agent: str, mode: str = "stream") -> str:
    """The invoke path of a demo agent; mode is `sync`, `async` or `stream`."""
    suffix = {"sync": "", "async": "/async", "stream": "/stream"}[mode]
    return f"/v1/agents/{agent_id(agent)}/invoke{suffix}"


async def stream(client: httpx.AsyncClient, agent: str, text: str, **body: Any) -> Transcript:
    """Run one streamed turn of `agent` and read it to the end."""
    headers = body.pop("headers", None)
    payload = {"input": {"text": text}, **body}
    async with client.stream("POST", path(agent), json=payload, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        return await collect(response)
