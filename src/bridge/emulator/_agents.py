"""Scripted agents: what each demo agent does in one turn, and the context a script runs in.

A script is `async def script(ctx: TurnContext) -> None`. It emits events through `ctx`;
the emulator wraps it with `task_created`/`task_updated(executing)` before and
`task_finished` after. The final `result` is the concatenation of the chunks unless the
script sets `ctx.result`, and `ctx.fail()` ends the turn `failed` or `error`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

from bridge.emulator import _writer
from bridge.emulator._common import IdFactory, agent_id, dumps, utc_iso
from bridge.emulator._state import TaskRecord, Turn

__all__ = [
    "DEMO_AGENTS",
    "SCRIPTS",
    "AgentSpec",
    "Script",
    "Timing",
    "TurnContext",
    "TurnFailedSignal",
    "demo_agents",
]

Script = Callable[["TurnContext"], Awaitable[None]]


@dataclass(frozen=True)
class Timing:
    """Every delay of the scripted agents, configurable so tests stay fast."""

    slow_silence: float = 65.0
    login_timeout: float = 5.0
    step_delay: float = 0.0


@dataclass
class AgentSpec:
    """An emulated agent: its public fields and the script it runs.

    `script` is the name of a built-in script (`echo`, `writer`, `researcher`, `slow`,
    `failing`, `approver`, `signin`) or an async callable taking a `TurnContext`.
    The id defaults to `uuid5(NAMESPACE, name)`.
    """

    name: str
    description: str = ""
    script: str | Script = "echo"
    id: str = ""
    status: str = "ACTIVE"
    version: int = 1
    instructions: dict[str, Any] = field(
        default_factory=lambda: {"role": [], "goal": [], "general": ""}
    )
    created_at: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or agent_id(self.name)
        if isinstance(self.script, str) and self.script not in SCRIPTS:
            raise ValueError(f"unknown script {self.script!r}; known: {sorted(SCRIPTS)}")

    @property
    def run(self) -> Script:
        return SCRIPTS[self.script] if isinstance(self.script, str) else self.script

    def summary(self, organization_id: str) -> dict[str, Any]:
        """The agent as `GET /v1/agents` lists it (spec §2.3)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "icon": None,
            "type": "regular",
            "status": self.status,
            "organization_id": organization_id,
            "deployment_type": "serverless",
            "created_at": self.created_at,
            "instructions": self.instructions,
            "model_provider": "emulator",
            "model_name": "scripted",
            "framework": "agno",
            "has_pending_changes": False,
        }

    def detail(self, organization_id: str) -> dict[str, Any]:
        """The agent as `GET /v1/agents/{id}` returns it."""
        return {
            **self.summary(organization_id),
            "unique_name": self.name,
            "version": self.version,
            "access_scope": "organizational",
            "tools": [],
            "knowledge_base_ids": [],
            "source_node_types": ["sdk", "mcp", "slack", "telegram"],
        }


class TurnFailedSignal(Exception):
    """Raised by `TurnContext.fail` to end the turn with `status` and `message`."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TurnContext:
    """What a script sees and does during one turn."""

    def __init__(self, record: TaskRecord, turn: Turn, timing: Timing) -> None:
        self.record = record
        self.turn = turn
        self.timing = timing
        self.chunks: list[str] = []
        self.result: str | None = None

    @property
    def text(self) -> str:
        return self.turn.text

    def emit(self, type_: str, data: Any) -> None:
        """Emit one SSE event of this turn (envelope per spec §4.2)."""
        self.turn.append(
            {
                "type": type_,
                "task_id": self.record.id,
                "organization_id": self.record.organization_id,
                "time": utc_iso(),
                "data": data,
            }
        )

    def emit_task(self, type_: str) -> None:
        """Emit a lifecycle event carrying the full task object."""
        self.record.touch()
        self.emit(type_, self.record.to_json())

    def chunk(self, text: str) -> None:
        self.chunks.append(text)
        self.emit("chunk", text)

    def think(self, title: str, thought: str, action: str | None = None) -> None:
        data = {"type": "think", "title": title, "thought": thought, "confidence": 0.9}
        self.emit("think", {**data, "action": action} if action else data)

    def analyze(self, title: str, result: str, analysis: str) -> None:
        self.emit(
            "analyze",
            {"type": "analyze", "title": title, "result": result, "analysis": analysis}
            | {"confidence": 0.95},
        )

    async def tool_call(
        self, name: str, payload: dict[str, Any], result: Any, *, delay: float = 0.0
    ) -> None:
        """Emit a `tool_call_request`, wait `delay`, then the matching `tool_call_result`."""
        number = self.turn.number
        request = {
            "request_id": IdFactory.derived(self.record.id, number, name, "request"),
            "operation_id": name,
            "tool_call_id": f"call_{number:02d}",
            "graph_node_id": None,
            "tool_name": name,
            "payload": payload,
            "reasoning": {"title": f"Call {name}", "description": f"Needed to answer: {self.text}"},
        }
        self.emit("tool_call_request", request)
        await self.sleep(delay)
        self.emit("tool_call_result", {**request, "result": result, "is_error": False})
        self.record.add_message(
            "tool", dumps(result), tool_name=name, tool_args=payload, tool_call_error=False
        )

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await anyio.sleep(seconds)

    async def pause(self, hitl_request: dict[str, Any]) -> bool:
        """Pause for human approval until `Emulator.resume`; returns whether it was approved."""
        turn = self.turn
        turn.status, turn.paused_at, turn.hitl_request = "paused", utc_iso(), hitl_request
        self.emit_task("task_updated")
        await turn.resumed.wait()
        turn.status, turn.hitl_request = "executing", None
        self.emit_task("task_updated")
        return turn.approved is not False

    async def wait_for_login(self) -> bool:
        """Wait for `Emulator.complete_login` up to `login_timeout`; `True` if it happened."""
        with anyio.move_on_after(self.timing.login_timeout):
            await self.turn.logged_in.wait()
        return self.turn.logged_in.is_set()

    def fail(self, message: str, status: str = "failed") -> None:
        raise TurnFailedSignal(status, message)


def _words(text: str, parts: int) -> list[str]:
    """Split at word boundaries into at most `parts` pieces whose concatenation is `text`."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    if not tokens:
        return []
    size = -(-len(tokens) // parts)
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]


async def echo(ctx: TurnContext) -> None:
    for piece in _words(ctx.text, 3):
        ctx.chunk(piece)


async def writer(ctx: TurnContext) -> None:
    plan = _writer.parse_directives(ctx.text)
    pieces = _writer.split(_writer.document(plan.chars), plan.chunks)
    start = anyio.current_time()
    for index, piece in enumerate(pieces):
        if plan.seconds > 0:
            await ctx.sleep(start + plan.seconds * (index + 1) / len(pieces) - anyio.current_time())
        elif index % 256 == 255:
            await anyio.lowlevel.checkpoint()
        ctx.chunk(piece)


async def researcher(ctx: TurnContext) -> None:
    topic = ctx.text.strip() or "the question"
    delay = ctx.timing.step_delay
    ctx.think("Plan", f"I need sources about {topic!r}; search first.", "call search_web")
    await ctx.sleep(delay)
    hits = [
        {"title": f"{topic} — overview", "url": "https://example.com/overview"},
        {"title": f"{topic} — in depth", "url": "https://example.com/in-depth"},
    ]
    await ctx.tool_call("search_web", {"bodyParams": {"query": topic}}, {"hits": hits}, delay=delay)
    ctx.analyze(
        "Check results", f"{len(hits)} sources found", "The sources agree; enough to answer."
    )
    await ctx.sleep(delay)
    ctx.chunk(f"Here is what I found about {topic}:\n\n")
    for hit in hits:
        ctx.chunk(f"- [{hit['title']}]({hit['url']})\n")
    ctx.chunk("\nBoth sources agree.")


async def slow(ctx: TurnContext) -> None:
    ctx.think("Plan", "This needs a slow tool.", "call slow_tool")
    await ctx.tool_call(
        "slow_tool",
        {"bodyParams": {"query": ctx.text}},
        {"status": "done"},
        delay=ctx.timing.slow_silence,
    )
    ctx.chunk("Sorry for the wait. ")
    ctx.chunk(f"Done: {ctx.text}")


async def failing(ctx: TurnContext) -> None:
    ctx.think("Plan", "Try the task; it is scripted to fail.")
    await ctx.sleep(ctx.timing.step_delay)
    if "error" in ctx.text.lower():
        ctx.fail("Scripted runtime error: the agent crashed while working.", "error")
    ctx.fail("Scripted failure: the agent could not complete the task.", "failed")


async def approver(ctx: TurnContext) -> None:
    number = ctx.turn.number
    approved = await ctx.pause(
        {
            "operation_id": f"approve_{ctx.record.id}_{number}",
            "content": f"The agent wants to act on: {ctx.text}",
            "title": "Approval required",
        }
    )
    if approved:
        ctx.chunk("Approved. ")
        ctx.chunk(f"Done: {ctx.text}")
    else:
        ctx.chunk("Rejected; nothing was done.")


async def signin(ctx: TurnContext) -> None:
    url = f"{ctx.turn.base_url}/_emulator/login/{ctx.record.id}"
    ctx.emit(
        "auth_event",
        {
            "type": "login_required",
            "data": {
                "url": url,
                "server_url": "https://mcp.example.com/mcp",
                "server_name": "Example MCP",
            },
        },
    )
    await ctx.wait_for_login()
    ctx.emit("auth_event", {"type": "token_ready", "data": {"access_token": "REDACTED"}})
    ctx.chunk("Signed in to Example MCP. ")
    ctx.chunk(f"Done: {ctx.text}")


SCRIPTS: dict[str, Script] = {
    "echo": echo,
    "writer": writer,
    "researcher": researcher,
    "slow": slow,
    "failing": failing,
    "approver": approver,
    "signin": signin,
}

_DESCRIPTIONS = {
    "echo": "Answers with your message, verbatim.",
    "writer": "Writes a long Markdown report. Directives: chars=N, chunks=N, seconds=S.",
    "researcher": "Thinks, searches the web with a tool, analyses and answers with sources.",
    "slow": "Calls a slow tool and goes silent for a long time before answering.",
    "failing": "Always fails; ends with status `error` when the message contains 'error'.",
    "approver": "Pauses for human approval before acting, then completes.",
    "signin": "Needs the user to sign in to an MCP server before it can answer.",
}


def demo_agents() -> list[AgentSpec]:
    """Fresh specs of the seven demo agents, named after their scripts."""
    return [AgentSpec(name, description, name) for name, description in _DESCRIPTIONS.items()]


#: Names of the demo agents, in listing order.
DEMO_AGENTS = tuple(_DESCRIPTIONS)
