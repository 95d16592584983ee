"""`FakeBotAPI`: a Bot API server on a real socket that records, validates and paces calls.

Long polling is real (`getUpdates` waits until an update is queued or its
timeout ends); webhooks are real (queued updates are POSTed with the secret
header); edits faster than `min_edit_interval` per chat get 429 `retry_after`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge_telegram.testing._checks import entity_problem, request_params, text_problem

__all__ = ["Call", "FakeBotAPI", "SentMessage"]


@dataclass
class Call:
    """One request to the fake: method, parameters, loop time, HTTP status answered."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class SentMessage:
    """A message the bot sent, in its current (edited) state."""

    chat_id: int
    message_id: int
    text: str
    entities: list[dict[str, Any]]
    thread_id: int | None = None
    reply_to: int | None = None
    edits: int = 0


@dataclass
class _Pending:
    update: dict[str, Any]
    queued_at: float
    replay: bool = False


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    is_forum: bool = False
    next_message_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        if self.is_forum:
            data["is_forum"] = True
        return data


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


class FakeBotAPI:
    """State and behaviour of the fake; `open_fake_bot_api` serves it."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        username: str = "bridge_test_bot",
        min_edit_interval: float = 0.9,
        supports_drafts: bool = True,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.min_edit_interval = min_edit_interval
        self.supports_drafts = supports_drafts
        self.api_url = ""
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.drafts: dict[tuple[int, int], str] = {}
        self.commands: list[dict[str, Any]] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_responses: list[int] = []
        self.queued_at: dict[int, float] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        #: `getChatMember` statuses by (chat id, user id); anyone else is a "member".
        self.members: dict[tuple[int, int], str] = {}
        self._chats: dict[int, _Chat] = {}
        self._pending: list[_Pending] = []
        self._update_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._last_edit: dict[int, float] = {}
        self._forced: dict[str, list[tuple[int, int]]] = {}
        self._passing: dict[str, int] = {}
        self._changed = anyio.Event()
        self.closing = anyio.Event()
        self.spawn: Callable[[Callable[[], Any]], object] | None = None
        self.http: httpx.AsyncClient | None = None

    # -- observing -------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        """Wait until `predicate()` is truthy (re-checked at every change); bound it yourself."""
        while True:
            value = predicate()
            if value:
                return value
            await self._changed.wait()

    def calls_to(self, *methods: str) -> list[Call]:
        return [call for call in self.calls if call.method in methods]

    def sent(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first."""
        found = [m for (chat, _), m in self.messages.items() if chat == chat_id]
        return sorted(found, key=lambda m: m.message_id)

    @property
    def rate_limited(self) -> int:
        return sum(1 for call in self.calls if call.status == 429)

    def fail_next(
        self, method: str, *, retry_after: int = 1, status: int = 429, after: int = 0
    ) -> None:
        """Answer the next call of `method` (once `after` more have passed) with `status`:
        429 carries `retry_after`, another status (a 5xx) an internal server error."""
        self._forced.setdefault(method, []).append((status, retry_after))
        self._passing[method] = after

    # -- chats and updates -------------------------------------------------------

    def chat(
        self,
        chat_id: int,
        kind: str = "private",
        *,
        title: str | None = None,
        is_forum: bool = False,
    ) -> _Chat:
        found = self._chats.get(chat_id)
        if found is None:
            found = self._chats[chat_id] = _Chat(chat_id, kind, title, is_forum)
        return found

    def _chat_of(self, chat_id: int) -> _Chat:
        return self._chats.get(chat_id) or self.chat(chat_id, "private" if chat_id > 0 else "group")

    def next_message_id(self, chat_id: int) -> int:
        return next(self._chat_of(chat_id).next_message_id)

    def queue(self, message: dict[str, Any]) -> dict[str, Any]:
        """Queue an update carrying `message`; returns the update (with its `update_id`)."""
        update = {"update_id": next(self._update_ids), "message": message}
        self._enqueue(_Pending(update, anyio.current_time()))
        return update

    def replay(self, update: dict[str, Any]) -> None:
        """Deliver the same update (same `update_id`) again, as after a lost confirmation."""
        self._enqueue(_Pending(update, anyio.current_time(), replay=True))

    def _enqueue(self, pending: _Pending) -> None:
        self.queued_at.setdefault(pending.update["update_id"], pending.queued_at)
        if self.webhook_url:
            self._deliver(pending.update)
        else:
            self._pending.append(pending)
        self._notify()

    def add_file(self, data: bytes, name: str) -> str:
        file_id = f"file-{next(self._file_ids)}"
        self.files[file_id] = (f"documents/{name}", data)
        return file_id

    def _deliver(self, update: dict[str, Any]) -> None:
        assert self.spawn is not None
        self.spawn(lambda: self._post_webhook(update))

    async def _post_webhook(self, update: dict[str, Any]) -> None:
        assert self.http is not None
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret} if self.webhook_secret else {}
        )
        response = await self.http.post(self.webhook_url, json=update, headers=headers)
        self.webhook_responses.append(response.status_code)
        self._notify()

    # -- HTTP ----------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
            )
        method = request.path_params["method"]
        params = await request_params(request)
        call = Call(method, params, anyio.current_time())
        self.calls.append(call)
        self._notify()
        try:
            result = await self._dispatch(method, params)
        except ApiError as exc:
            call.status = exc.code
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            self._notify()
            return JSONResponse(body, exc.code)
        self._notify()
        return JSONResponse({"ok": True, "result": result})

    async def file_endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return Response("Unauthorized", 401)
        path = request.path_params["path"]
        for file_path, data in self.files.values():
            if file_path == path:
                return Response(data, media_type="application/octet-stream")
        return Response("Not Found", 404)

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        forced = self._forced.get(method)
        if forced and self._passing.get(method):
            self._passing[method] -= 1
        elif forced:
            status, retry_after = forced.pop(0)
            if status == 429:
                raise ApiError(429, "Too Many Requests: retry later", retry_after)
            raise ApiError(status, "Internal Server Error")
        handler = getattr(self, f"_api_{method}", None)
        if handler is None or (method == "sendMessageDraft" and not self.supports_drafts):
            raise ApiError(404, "Not Found")
        return await handler(params)

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Bridge",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        self._pending = [p for p in self._pending if p.replay or p.update["update_id"] >= offset]
        with anyio.move_on_after(timeout):
            while not self._pending and not self.closing.is_set():
                await self._changed.wait()
        ready = list(self._pending)
        for pending in ready:
            pending.replay = False  # a replay is delivered once regardless of the offset
        return [p.update for p in sorted(ready, key=lambda p: p.update["update_id"])]

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook_url = str(params.get("url") or "")
        self.webhook_secret = params.get("secret_token")
        for pending in self._pending:
            self._deliver(pending.update)
        self._pending.clear()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook_url, self.webhook_secret = "", None
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands = list(params.get("commands") or [])
        return True

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def _checked(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text = params.get("text")
        problem = text_problem(text)
        if problem is None:
            problem = entity_problem(str(text), params.get("entities"))
        if problem is not None:
            raise ApiError(400, problem)
        return str(text), list(params.get("entities") or [])

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        text, entities = self._checked(params)
        chat_id = int(params["chat_id"])
        reply = params.get("reply_parameters") or {}
        thread = params.get("message_thread_id")
        message = SentMessage(
            chat_id,
            self.next_message_id(chat_id),
            text,
            entities,
            int(thread) if thread else None,
            reply.get("message_id"),
        )
        self.messages[(chat_id, message.message_id)] = message
        return self._message_json(message)

    async def _api_sendMessageDraft(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        if self._chat_of(chat_id).type != "private":
            raise ApiError(400, "Bad Request: drafts can be sent to private chats only")
        text, _ = self._checked(params)
        self.drafts[(chat_id, int(params["draft_id"]))] = text
        return True

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        message = self.messages.get((chat_id, int(params["message_id"])))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text, entities = self._checked(params)
        now = time.monotonic()
        if now - self._last_edit.get(chat_id, -1e9) < self.min_edit_interval:
            raise ApiError(429, "Too Many Requests: retry after 1", 1)
        if text == message.text and entities == message.entities:
            raise ApiError(400, "Bad Request: message is not modified")
        self._last_edit[chat_id] = now
        message.text, message.entities = text, entities
        message.edits += 1
        return self._message_json(message)

    async def _api_getChatMember(self, params: dict[str, Any]) -> Any:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        status = self.members.get((chat_id, user_id), "member")
        member: dict[str, Any] = {
            "status": status,
            "user": {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"},
        }
        if status in ("creator", "administrator"):
            member["is_anonymous"] = False
        if status == "administrator":
            rights = [
                "manage_chat",
                "delete_messages",
                "manage_video_chats",
                "restrict_members",
                "promote_members",
                "change_info",
                "invite_users",
                "post_stories",
                "edit_stories",
                "delete_stories",
            ]
            member |= {"can_be_edited": False} | {f"can_{right}": True for right in rights}
        return member

    async def _api_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data),
            "file_path": path,
        }

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": self._chat_of(message.chat_id).as_json(),
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Bridge",
                "username": self.username,
            },
            "text": message.text,
        }
        if message.entities:
            data["entities"] = message.entities
        if message.thread_id:
            data["message_thread_id"] = message.thread_id
            data["is_topic_message"] = self._chat_of(message.chat_id).is_forum
        return data
