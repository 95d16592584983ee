"""The A2A routes on the bridge's HTTP app: `/a2a/` lists the agents, `/a2a/NAME/` serves
one agent (card, JSON-RPC at the root, HTTP+JSON under `rest`), rebuilt as the list changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import BasePushNotificationSender
from a2a.utils.push_url_validator import validate_push_notification_url
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import Receive, Scope, Send

from bridge import errors
from bridge.chat import AgentDirectory, UserGate
from bridge.models import Agent
from bridge_a2a._cards import CARD_PATH, agent_card, agent_url
from bridge_a2a._config import A2AConfig
from bridge_a2a._contexts import ContextBuilder
from bridge_a2a._direct import BridgeRequestHandler
from bridge_a2a._executor import BridgeExecutor, Shared
from bridge_a2a._identity import BearerGate, CallContextBuilder
from bridge_a2a._names import exposed_names
from bridge_a2a._tasks import TaskBackend

__all__ = ["A2AServer", "webhook_policy"]

logger = logging.getLogger(__name__)


def webhook_policy(config: A2AConfig) -> Callable[[str], Awaitable[bool]]:
    """Public http(s) webhook URLs only, unless the config allows private and loopback ones."""

    async def allowed(url: str) -> bool:
        if config.allow_private_webhooks:
            parts = urlsplit(url)
            return parts.scheme in ("http", "https") and bool(parts.hostname)
        return await validate_push_notification_url(url)

    return allowed


class A2AServer:
    """An ASGI app mounted at `[adapters.a2a] path`, one SDK handler per exposed agent."""

    def __init__(
        self,
        shared: Shared,
        backend: TaskBackend,
        sender: BasePushNotificationSender,
        public_url: str | None,
    ) -> None:
        self._shared = shared
        self._config = shared.config
        self._backend = backend
        self._public_url = public_url
        self._gate = UserGate(
            self._config.user_rate_limit,
            self._config.user_rate_window,
            store=shared.conversations.store,
            scope="a2a",
        )
        self._sender = sender
        self.agents: dict[str, Agent] = {}
        self.handlers: dict[str, BridgeRequestHandler] = {}
        self._router = Router(routes=[Route("/", self._index, methods=["GET"])])

    def _base(self, request: Request) -> str:
        return self._public_url or f"{request.url.scheme}://{request.url.netloc}"

    async def _index(self, request: Request) -> Response:
        base = self._base(request)
        listing = [
            {
                "name": name,
                "title": agent.name,
                "description": agent.description or "",
                "url": agent_url(base, self._config, name),
                "card": agent_url(base, self._config, name) + CARD_PATH.lstrip("/"),
            }
            for name, agent in sorted(self.agents.items())
        ]
        return JSONResponse({"agents": listing})

    def _handler(self, name: str, agent: Agent) -> BridgeRequestHandler:
        backend, config = self._backend, self._config
        handler = BridgeRequestHandler(
            BridgeExecutor(agent, self._shared),
            task_store=backend.tasks,
            agent_card=agent_card(agent, name, "http://127.0.0.1", config),
            push_config_store=backend.push_configs if config.push_notifications else None,
            push_sender=self._sender if config.push_notifications else None,
            request_context_builder=ContextBuilder(
                agent.id, self._shared.conversations, backend.tasks, self._gate
            ),
            push_url_validator=webhook_policy(config),
            event_stream=backend.events,
            interrupted_task_timeout=config.interrupted_timeout,
        )
        return handler

    def _agent_app(self, name: str, agent: Agent, handler: BridgeRequestHandler) -> Router:
        context = CallContextBuilder(agent.id)

        async def card(request: Request) -> Response:
            served = agent_card(agent, name, self._base(request), self._config)
            return JSONResponse(agent_card_to_dict(served))

        calls = Router(
            routes=[
                *create_jsonrpc_routes(
                    handler, "/", context_builder=context, enable_v0_3_compat=True
                ),
                Mount("/rest", routes=create_rest_routes(handler, context_builder=context)),
            ]
        )
        return Router(
            routes=[
                Route(CARD_PATH, card, methods=["GET"]),
                Mount("", app=BearerGate(calls, self._config.tokens)),
            ]
        )

    async def refresh(self, directory: AgentDirectory) -> bool:
        """Reload the agent list and rebuild the routes; True when it changed.

        Raises:
            UpstreamError: the list could not be read.
        """
        agents = exposed_names(await directory.agents(fresh=True), self._config.agents)
        if {n: a.id for n, a in agents.items()} == {n: a.id for n, a in self.agents.items()}:
            return False
        routes: list[Any] = [Route("/", self._index, methods=["GET"])]
        for name, agent in sorted(agents.items()):
            handler = self.handlers.get(agent.id)
            if handler is None:
                handler = self.handlers[agent.id] = self._handler(name, agent)
            routes.append(Mount(f"/{name}", app=self._agent_app(name, agent, handler)))
        self.agents = agents
        self._router = Router(routes=routes)
        logger.info("A2A agents: %s", ", ".join(sorted(agents)) or "none")
        return True

    async def watch(self, directory: AgentDirectory) -> None:
        """Follow the agent list until cancelled."""
        while True:
            await anyio.sleep(self._config.refresh_interval)
            try:
                await self.refresh(directory)
            except errors.UpstreamError as exc:
                logger.warning("could not refresh the A2A agent list: %s", exc)

    async def settle(self, grace: float) -> None:
        """Wait (bounded) until the SDK has written what finished turns handed it.

        The SDK writes a task's events after the executor enqueued them and offers no public
        flush, so this watches its active tasks (and the direct requests): those whose turns
        handed over their end finish once written; those still waiting on a turn (or the
        user) go to recovery.
        """
        live = self._shared.live

        def handed(task_id: str) -> bool:
            turn = live.get(task_id)
            return turn is None or turn.handed_end

        with anyio.move_on_after(grace):
            for handler in self.handlers.values():
                await handler.settle(handed)
                active = handler._active_task_registry._active_tasks
                for task_id, task in list(active.items()):
                    if handed(task_id) and not task.is_finished:
                        await task._is_finished.wait()

    async def aclose(self) -> None:
        """Stop every handler's running tasks (their turns are left to recovery)."""
        self._shared.closing = True
        await self.settle(5.0)
        for handler in self.handlers.values():
            handler.cancel_direct()
            await handler.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)
