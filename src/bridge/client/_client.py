"""`AgentClient`: the only code that talks HTTP to the platform.

Retries are limited to what cannot duplicate work: requests that never reached
the server, explicit 429/503 refusals, idempotent reads, and invokes the platform
shows did not start their turn. An invoke whose turn started is never sent again
(see `_run.Run` and `_checks`).
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies

import anyio
import httpx
from pydantic import SecretStr

from bridge import errors
from bridge._version import __version__
from bridge.client._checks import Attempts, CallerIds, Checkpoint, find_turn
from bridge.client._pool import use_linear_pool
from bridge.client._run import Run
from bridge.client._transport import error_for_response, map_transport_errors, read_capped
from bridge.client._wire import build_invoke_body, parse_task
from bridge.config import UpstreamConfig
from bridge.models import Agent, InvokeOptions, Page, Task, ThreadMessage, User

__all__ = ["AgentClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
RetryPolicy = Literal["refusals", "idempotent"]
_REFUSALS = frozenset({429, 503})
_PAGE_SIZE = 50


def _tls_verification(base_url: str) -> ssl.SSLContext | bool:
    """httpx's default (verify against the CA bundle) unless this client never makes a TLS
    connection: a plain `http://` base URL, which every request goes to (paths are relative,
    redirects are not followed), and no proxy in the environment. Loading the CA bundle is
    most of the cost of a new client, and of `bridge mcp`'s start-up; the context used
    instead still verifies, with no trust anchors: TLS it was never meant to make fails."""
    if urlsplit(base_url).scheme != "http" or getproxies():
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class AgentClient:
    """Async client of the platform API. Use as an async context manager, or call `aclose()`.

    Every method raises `bridge.errors.UpstreamError` subclasses: `AuthenticationError`
    (401), `NotFoundError` (404), `ValidationError` (422), `RateLimitError` (429),
    `ServerError` (5xx), `TransportError` (connection, timeout, stream).
    """

    def __init__(
        self,
        config: UpstreamConfig | None = None,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        config = config or UpstreamConfig()
        updates: dict[str, Any] = {}
        if base_url is not None:
            updates["base_url"] = base_url
        if api_key is not None:
            updates["api_key"] = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.config = config.model_copy(update=updates)
        #: Whether the platform keeps the ids chosen for new threads (learnt as it goes).
        self.caller_ids = CallerIds(self.config.new_thread_ids)
        self._http = http_client or self._new_http()

    def _new_http(self) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/"),
            headers=self._headers(),
            timeout=httpx.Timeout(self.config.read_timeout, connect=self.config.connect_timeout),
            verify=_tls_verification(self.config.base_url),
            limits=httpx.Limits(
                max_connections=self.config.max_connections,
                max_keepalive_connections=self.config.max_connections,
                # Below common server idle timeouts (uvicorn's is 5 s): reusing a connection
                # the server is closing fails an invoke that cannot safely be re-sent.
                keepalive_expiry=self.config.keepalive_expiry,
            ),
        )
        use_linear_pool(http)
        return http

    def _headers(self) -> dict[str, str]:
        headers = {"user-agent": f"agent-bridge/{__version__} httpx/{httpx.__version__}"}
        if self.config.api_key is not None:
            headers["x-api-key"] = self.config.api_key.get_secret_value()
        if self.config.organization_id:
            headers["x-organization-id"] = self.config.organization_id
        return headers

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ----------------------------------------------------------

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        retry: RetryPolicy,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a successful response (streaming if `stream`)."""
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.config.max_attempts
            try:
                with map_transport_errors():
                    response = await self._http.send(build(), stream=True)
                    if not stream or response.status_code >= 400:
                        response = await read_capped(response, self.config.max_response_bytes)
            except errors.UpstreamConnectError:
                if last:
                    raise
                await self.backoff(attempt, None, "connect failed")
                continue
            except errors.TransportError:
                if last or retry != "idempotent":
                    raise
                await self.backoff(attempt, None, "transport error")
                continue
            if response.status_code < 400:
                return response
            error = error_for_response(response)
            retryable = response.status_code in _REFUSALS or (
                retry == "idempotent" and response.status_code >= 500
            )
            if last or not retryable:
                raise error
            await self.backoff(attempt, error.retry_after, f"HTTP {response.status_code}")

    async def backoff(self, attempt: int, retry_after: float | None, why: str) -> None:
        """Wait before retry `attempt`: `retry_after` when the platform said, else an
        exponential delay with full jitter."""
        if retry_after is not None:
            delay = retry_after
        else:  # exponential backoff with "full jitter"
            ceiling = min(self.config.backoff_max, self.config.backoff_initial * 2 ** (attempt - 1))
            delay = random.uniform(ceiling / 2, ceiling)
        logger.info("platform request failed (%s); retry %d in %.2fs", why, attempt, delay)
        await anyio.sleep(delay)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        retry: RetryPolicy = "idempotent",
        params: dict[str, Any] | None = None,
        json: Any = None,
        read_timeout: float | None = None,
    ) -> Any:
        request_timeout: httpx.Timeout | None = None
        if read_timeout is not None:
            request_timeout = httpx.Timeout(read_timeout, connect=self.config.connect_timeout)

        def build() -> httpx.Request:
            return self._http.build_request(
                method,
                path,
                params=_clean(params),
                json=json,
                timeout=request_timeout
                if request_timeout is not None
                else httpx.USE_CLIENT_DEFAULT,
            )

        response = await self._send(build, retry=retry)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise errors.TransportError(f"platform sent invalid JSON for {method} {path}") from exc

    # -- agents ------------------------------------------------------------

    async def list_agents(self) -> list[Agent]:
        """Every agent of the organization (all pages)."""
        agents: list[Agent] = []
        page = 1
        while True:
            body = Page.model_validate(
                await self._json("GET", "/v1/agents", params={"page": page, "per_page": _PAGE_SIZE})
            )
            agents.extend(Agent.model_validate(item) for item in body.items)
            if page >= body.total_pages or not body.items:
                return agents
            page += 1

    async def list_agents_page(self, *, page: int = 1, per_page: int = 20) -> Page:
        """One page of the agent list (cheap; used as a readiness probe)."""
        params = {"page": page, "per_page": per_page}
        return Page.model_validate(await self._json("GET", "/v1/agents", params=params))

    async def get_agent(self, agent_id: str) -> Agent:
        return Agent.model_validate(await self._json("GET", f"/v1/agents/{agent_id}"))

    async def find_agent(self, name_or_id: str) -> Agent:
        """The agent with this id, or else with this name (case-insensitive).

        Raises:
            NotFoundError: no agent has that id or name.
        """
        wanted = name_or_id.strip().casefold()
        agents = await self.list_agents()
        for agent in agents:
            if agent.id == name_or_id:
                return agent
        for agent in agents:
            if agent.name.casefold() == wanted:
                return agent
        raise errors.NotFoundError(
            f"no agent named or with id {name_or_id!r}", status_code=404, detail=name_or_id
        )

    # -- invoking ------------------------------------------------------------

    def stream(
        self,
        agent_id: str,
        text: str,
        *,
        thread: str | None = None,
        files: Sequence[str] = (),
        user: User | None = None,
        source: str | None = None,
        options: InvokeOptions | None = None,
        stop_on_cancel: bool = False,
        checkpoint: Checkpoint | None = None,
    ) -> Run:
        """Start a streamed turn. Use as `async with client.stream(...) as run: async for e in run`.

        `thread` continues an earlier task's conversation; without it a new thread
        starts, under an id the bridge chooses (see `upstream.new_thread_ids`). The
        events end with `TaskFinished`; a failed turn raises `RunFailedError`. A stream
        lost after `task_created` is completed by polling, never by re-sending the invoke;
        one that failed before it is re-sent only once the platform shows that the turn
        did not start. Pass a `checkpoint` (from `checkpoint()`) recorded beforehand to
        be able to tell after a crash whether the turn started (`find_turn`).
        """
        body = build_invoke_body(
            text,
            thread=None,
            files=tuple(files),
            user=user,
            source=source,
            options=options,
            events_streaming=True,
        )
        params = self._version_params(options)
        timeout = httpx.Timeout(
            self.config.read_timeout,
            connect=self.config.connect_timeout,
            read=self.config.idle_timeout,
        )

        async def open_response(task_id: str | None) -> httpx.Response:
            sent = {**body, "id": task_id} if task_id else body

            def build() -> httpx.Request:
                return self._http.build_request(
                    "POST",
                    f"/v1/agents/{agent_id}/invoke/stream",
                    params=params,
                    json=sent,
                    headers={"accept": "text/event-stream"},
                    timeout=timeout,
                )

            return await self._send(build, retry="refusals", stream=True)

        return Run(
            self,
            open_response,
            text=text,
            thread=thread,
            caller_ids=self.caller_ids,
            stop_on_cancel=stop_on_cancel,
            checkpoint=checkpoint,
        )

    async def checkpoint(self, text: str, *, thread: str | None = None) -> Checkpoint:
        """What will identify a turn of `text` upstream (the id chosen for a new thread, or
        the continued thread's message count), to record before the turn is sent."""
        return await Checkpoint.take(self, text, thread, self.caller_ids)

    async def find_turn(self, checkpoint: Checkpoint) -> Task | None:
        """The task of the checkpoint's turn when the platform started it, None when the
        platform shows it did not (sending it again then starts it once).

        Raises:
            TurnUnknownError: the platform's answers cannot tell.
        """
        return await find_turn(self, checkpoint, self.caller_ids)

    async def invoke(
        self,
        agent_id: str,
        text: str,
        *,
        thread: str | None = None,
        files: Sequence[str] = (),
        user: User | None = None,
        source: str | None = None,
        options: InvokeOptions | None = None,
    ) -> Task:
        """Run a turn synchronously and return the completed task. Like `stream`, an invoke
        that failed before the turn was known to start is checked, then followed or re-sent.

        Raises:
            RunFailedError: the turn ended failed, error or stopped.
        """
        task = await self._invoke_once(
            f"/v1/agents/{agent_id}/invoke",
            text,
            thread=thread,
            files=files,
            user=user,
            source=source,
            options=options,
            read_timeout=self.config.poll_timeout,
        )
        if not task.is_terminal:  # an invoke that failed after its turn started
            task = await self.wait_task(task.id)
        if task.status != "completed":
            raise errors.RunFailedError(task)
        return task

    async def invoke_async(
        self,
        agent_id: str,
        text: str,
        *,
        thread: str | None = None,
        files: Sequence[str] = (),
        user: User | None = None,
        source: str | None = None,
        options: InvokeOptions | None = None,
    ) -> Task:
        """Start a turn and return at once with the pending task (poll with `wait_task`)."""
        return await self._invoke_once(
            f"/v1/agents/{agent_id}/invoke/async",
            text,
            thread=thread,
            files=files,
            user=user,
            source=source,
            options=options,
            read_timeout=None,
        )

    async def _invoke_once(
        self,
        path: str,
        text: str,
        *,
        thread: str | None,
        files: Sequence[str],
        user: User | None,
        source: str | None,
        options: InvokeOptions | None,
        read_timeout: float | None,
    ) -> Task:
        body = build_invoke_body(
            text,
            thread=None,
            files=tuple(files),
            user=user,
            source=source,
            options=options,
            events_streaming=False,
        )
        attempts = await Attempts.start(self, text, thread, self.caller_ids)
        while True:
            task_id = attempts.next_id()
            try:
                task = parse_task(
                    await self._json(
                        "POST",
                        path,
                        retry="refusals",
                        json={**body, "id": task_id} if task_id else body,
                        params=self._version_params(options),
                        read_timeout=read_timeout,
                    )
                )
            except errors.UpstreamError as exc:
                if attempts.drop_refused_id(exc):
                    continue
                if not attempts.is_ambiguous(exc):
                    raise
                found = await attempts.resolve(exc)
                if found is None:
                    continue
                return found
            attempts.created(task.id)
            return task

    def _version_params(self, options: InvokeOptions | None) -> dict[str, Any]:
        version = (options.version if options else None) or self.config.version
        return {"version": version} if version else {}

    # -- tasks ------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Task:
        return parse_task(await self._json("GET", f"/v1/tasks/{task_id}"))

    async def wait_task(
        self,
        task_id: str,
        *,
        on_update: Callable[[Task], Awaitable[None]] | None = None,
    ) -> Task:
        """Poll until the task is terminal (with backoff, bounded by `poll_timeout`).

        Raises:
            UpstreamTimeoutError: still not terminal after `poll_timeout` seconds.
        """
        delay = self.config.poll_interval
        last: str | None = None
        with anyio.move_on_after(self.config.poll_timeout):
            while True:
                task = await self.get_task(task_id)
                if task.is_terminal:
                    return task
                if on_update is not None and task.status != last:
                    await on_update(task)
                last = task.status
                await anyio.sleep(delay)
                delay = min(delay * 2, self.config.poll_interval_max)
        raise errors.UpstreamTimeoutError(
            f"task {task_id} not finished after {self.config.poll_timeout:g}s of polling"
        )

    async def list_tasks(self, *, page: int = 1, per_page: int = 20, **filters: str) -> Page:
        params: dict[str, Any] = {"page": page, "per_page": per_page, **filters}
        return Page.model_validate(await self._json("GET", "/v1/tasks", params=params))

    async def get_thread(self, task_id: str) -> list[ThreadMessage]:
        body = await self._json("GET", f"/v1/tasks/{task_id}/thread")
        return [ThreadMessage.model_validate(item) for item in body or []]

    async def thread_length(self, task_id: str) -> int:
        """How many messages the thread has, without reading each into a model (a turn's
        checkpoint needs only the count, and threads grow with every turn)."""
        body = await self._json("GET", f"/v1/tasks/{task_id}/thread")
        return len(body) if isinstance(body, list) else 0

    async def get_full_thread(self, task_id: str) -> dict[str, list[ThreadMessage]]:
        body = await self._json("GET", f"/v1/tasks/{task_id}/thread/full") or {}
        return {
            bucket: [ThreadMessage.model_validate(item) for item in items]
            for bucket, items in body.items()
            if isinstance(items, list)
        }

    async def stop_task(self, task_id: str) -> Task:
        """Stop a running task (idempotent: a finished task is returned unchanged)."""
        return parse_task(await self._json("POST", f"/v1/tasks/{task_id}/stop"))

    async def health(self) -> bool:
        """True when `GET /health` answers (no key needed)."""
        try:
            return bool(await self._json("GET", "/health") == "ok")
        except errors.UpstreamError:
            return False


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}
