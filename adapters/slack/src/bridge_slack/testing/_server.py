"""`FakeSlack`: a fake Slack Web API (and Socket Mode server) on 127.0.0.1:0.

It records every call, keeps channels' messages, enforces the rate tiers, and
answers `ok:false` / HTTP 429 when a tier is exceeded or a test forces a fault.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import anyio
from aiohttp import WSMsgType, web

from bridge_slack._manifest import BOT_SCOPES
from bridge_slack.testing._methods import MethodsMixin
from bridge_slack.testing._state import Call, FakeMessage, Fault, RateTiers, TsFactory

__all__ = ["FakeSlack", "open_fake_slack"]


class FakeSlack(MethodsMixin):
    """One fake workspace. Use `open_fake_slack()`."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot-token",
        app_token: str = "xapp-fake-app-token",
        signing_secret: str = "fake-signing-secret",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        supports_streaming: bool = True,
        enforce_tiers: bool = True,
    ) -> None:
        self.bot_token = bot_token
        #: Scopes `auth.test` reports in `X-OAuth-Scopes` (all the bridge needs, by default).
        self.scopes: list[str] = list(BOT_SCOPES)
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "BBOT"
        self.app_id = "AAPP"
        self.supports_streaming = supports_streaming
        self.tiers = RateTiers(enforce=enforce_tiers)
        self.calls: list[Call] = []
        self.messages: list[FakeMessage] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str, str]] = {}
        self.file_downloads: list[str | None] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.base_url = ""
        self.next_ts = TsFactory()
        self._changed = anyio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        #: Socket Mode connections accepted so far (an app restarting opens a new one).
        self.connections = 0
        self._socket_ready = anyio.Event()
        self.add_user("U1", "Ada Lovelace", "ada@example.com")

    # -- test-side helpers ---------------------------------------------------

    @property
    def api_url(self) -> str:
        """Web API base URL with the trailing slash slack_sdk needs."""
        return f"{self.base_url}/api/"

    def add_user(
        self,
        user_id: str,
        real_name: str,
        email: str | None,
        *,
        is_admin: bool = False,
        is_owner: bool = False,
    ) -> None:
        first, _, last = real_name.partition(" ")
        profile: dict[str, Any] = {
            "real_name": real_name,
            "display_name": first,
            "first_name": first,
            "last_name": last,
        }
        if email:
            profile["email"] = email
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": first.lower(),
            "real_name": real_name,
            "profile": profile,
            "tz": "Europe/London",
            "is_admin": is_admin,
            "is_owner": is_owner,
        }

    def add_file(self, data: bytes, name: str, mimetype: str = "text/plain") -> dict[str, Any]:
        """A file as Slack describes it in a message event, served only with the bot token."""
        file_id = "F" + secrets.token_hex(4).upper()
        self.files[file_id] = (data, name, mimetype)
        url = f"{self.base_url}/private/{file_id}/{name}"
        return {
            "id": file_id,
            "name": name,
            "mimetype": mimetype,
            "size": len(data),
            "url_private": url,
            "url_private_download": url + "?download=1",
        }

    def fail(
        self,
        method: str,
        *,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: float = 1.0,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with this failure."""
        self.faults.append(Fault(method, error, status, retry_after, times))

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @property
    def rate_limited(self) -> list[Call]:
        return [call for call in self.calls if call.error == "ratelimited"]

    def replies(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        """Messages of a thread after its root, oldest first."""
        return [
            m
            for m in self.messages
            if m.channel == channel and m.thread_ts == thread_ts and m.ts != thread_ts
        ]

    def message(self, channel: str, ts: str) -> FakeMessage | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        """Wait until `predicate()` is truthy (re-checked after every call); bound it yourself."""
        while True:
            value = predicate()
            if value:
                return value
            changed = self._changed
            await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- HTTP ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/private/{file_id}/{name}", self._private_file)
        app.router.add_post("/upload/{upload_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.pop(
            "token", ""
        )
        call = Call(method, args)
        self.calls.append(call)
        try:
            status, body, headers = self._answer(call, token)
        finally:
            self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, call: Call, token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        expected = self.app_token if call.method == "apps.connections.open" else self.bot_token
        if token != expected:
            return self._error(call, "invalid_auth")
        fault = next((f for f in self.faults if f.method == call.method and f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            return self._error(call, fault.error, fault.status, fault.retry_after)
        channel = call.args.get("channel") or call.args.get("channel_id")
        wait = self.tiers.admit(call.method, str(channel) if channel else None)
        if wait is not None:
            return self._error(call, "ratelimited", 429, wait)
        handler = self.METHODS.get(call.method)
        if handler is None:
            return self._error(call, "unknown_method", 200)
        try:
            result = handler(self, call.args)
        except LookupError as exc:
            return self._error(call, str(exc.args[0]), 200)
        headers = {"X-OAuth-Scopes": ",".join(self.scopes)} if call.method == "auth.test" else {}
        return 200, {"ok": True, **result}, headers

    def _error(
        self, call: Call, error: str, status: int = 200, retry_after: float | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        call.status, call.error = status, error
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else {}
        return status, {"ok": False, "error": error}, headers

    async def _private_file(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.file_downloads.append(auth)
        found = self.files.get(request.match_info["file_id"])
        if auth != f"Bearer {self.bot_token}" or found is None:
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        data, _, mimetype = found
        return web.Response(body=data, content_type=mimetype)

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["upload_id"])
        if upload is None:
            return web.Response(status=404)
        upload["data"] = await request.read()
        return web.Response(text="OK - uploaded")

    # -- Socket Mode ---------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": len(self._sockets)}))
        self.connections += 1
        self._socket_ready.set()
        self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    ack = json.loads(msg.data)
                    self.acks[str(ack.get("envelope_id"))] = ack
                    self._notify()
        finally:
            self._sockets.remove(ws)
        return ws

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0
    ) -> dict[str, Any]:
        """Push a Socket Mode envelope to the connected app and wait for its ack."""
        await self._socket_ready.wait()
        envelope_id = secrets.token_hex(8)
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        ack: dict[str, Any] = await self.wait_for(lambda: self.acks.get(envelope_id))
        return ack

    async def close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close()


async def _read_args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = {key: _maybe_json(value) for key, value in request.query.items()}
    raw = await request.read()
    if not raw:
        return args
    if request.content_type == "application/json":
        args.update(json.loads(raw))
        return args
    for key, value in parse_qsl(raw.decode(), keep_blank_values=True):
        args[key] = _maybe_json(value)
    return args


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@asynccontextmanager
async def open_fake_slack(**options: Any) -> AsyncIterator[FakeSlack]:
    """Run a `FakeSlack` on 127.0.0.1:0 until the block exits."""
    fake = FakeSlack(**options)
    runner = web.AppRunner(fake.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        with anyio.CancelScope(shield=True):
            await fake.close_sockets()
            await runner.cleanup()
