"""The Web API methods the fake answers, as plain functions of the call's arguments.

Each returns the extra fields of an `ok:true` answer or raises `LookupError(error_code)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from bridge_slack.testing._state import FakeMessage

if TYPE_CHECKING:
    from bridge_slack.testing._server import FakeSlack

__all__ = ["MethodsMixin"]

Method = Callable[["FakeSlack", dict[str, Any]], dict[str, Any]]


def _need(args: dict[str, Any], *names: str) -> None:
    for name in names:
        if not args.get(name):
            raise LookupError(
                f"missing_argument:{name}" if name != "channel" else "channel_not_found"
            )


def _text_of(args: dict[str, Any]) -> str:
    return str(args.get("markdown_text") or args.get("text") or "")


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return list(blocks) if isinstance(blocks, list) else []


def _chunks_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(str(c.get("text", "")) for c in chunks if c.get("type") == "markdown_text")


class MethodsMixin:
    """Web API method implementations; `METHODS` maps a method name to its function."""

    METHODS: ClassVar[dict[str, Method]] = {}

    def _find(self: FakeSlack, args: dict[str, Any]) -> FakeMessage:  # type: ignore[misc]
        found = self.message(str(args.get("channel")), str(args.get("ts")))
        if found is None:
            raise LookupError("message_not_found")
        return found


def _method(name: str) -> Callable[[Method], Method]:
    def register(func: Method) -> Method:
        MethodsMixin.METHODS[name] = func
        return func

    return register


@_method("auth.test")
def _auth_test(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": f"{fake.base_url}/",
        "team": "Fake Team",
        "user": "bridge",
        "team_id": fake.team_id,
        "user_id": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "app_id": fake.app_id,
        "is_enterprise_install": False,
    }


@_method("apps.connections.open")
def _connections_open(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    return {"url": fake.base_url.replace("http://", "ws://") + "/socket"}


@_method("chat.postMessage")
def _post(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _need(args, "channel")
    if not (_text_of(args) or _blocks(args)):
        raise LookupError("no_text")
    message = FakeMessage(
        str(args["channel"]),
        fake.next_ts(),
        _text_of(args),
        thread_ts=args.get("thread_ts"),
        user=fake.bot_user_id,
        blocks=_blocks(args),
        metadata=args.get("metadata"),
    )
    fake.messages.append(message)
    return {"channel": message.channel, "ts": message.ts, "message": message.as_json()}


@_method("chat.update")
def _update(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    message = fake._find(args)
    if "blocks" in args:
        message.blocks = _blocks(args)
    if _text_of(args):
        message.text = _text_of(args)
    message.edits += 1
    return {"channel": message.channel, "ts": message.ts, "text": message.text}


@_method("chat.postEphemeral")
def _ephemeral(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _need(args, "channel", "user")
    fake.ephemerals.append(dict(args))
    return {"message_ts": fake.next_ts()}


def _streaming(fake: FakeSlack) -> None:
    if not fake.supports_streaming:
        raise LookupError("unknown_method")


@_method("chat.startStream")
def _start_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _streaming(fake)
    _need(args, "channel", "thread_ts")
    channel = str(args["channel"])
    if not channel.startswith("D") and not (
        args.get("recipient_team_id") and args.get("recipient_user_id")
    ):
        raise LookupError("missing_recipient_team_id")
    chunks = list(args.get("chunks") or [])
    message = FakeMessage(
        channel,
        fake.next_ts(),
        _text_of(args) + _chunks_text(chunks),
        thread_ts=str(args["thread_ts"]),
        user=fake.bot_user_id,
        streaming=True,
        chunks=chunks,
    )
    fake.messages.append(message)
    return {"channel": channel, "ts": message.ts}


def _continue_stream(fake: FakeSlack, args: dict[str, Any]) -> FakeMessage:
    _streaming(fake)
    message = fake._find(args)
    if not message.streaming:
        raise LookupError("message_not_in_streaming_state")
    chunks = list(args.get("chunks") or [])
    message.text += _text_of(args) + _chunks_text(chunks)
    message.chunks.extend(chunks)
    return message


@_method("chat.appendStream")
def _append_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    message = _continue_stream(fake, args)
    return {"channel": message.channel, "ts": message.ts}


@_method("chat.stopStream")
def _stop_stream(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    message = _continue_stream(fake, args)
    message.blocks = _blocks(args)
    message.streaming = False
    return {"channel": message.channel, "ts": message.ts, "message": message.as_json()}


@_method("assistant.threads.setStatus")
def _set_status(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _need(args, "channel_id", "thread_ts")
    return {}


@_method("users.info")
def _users_info(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    found = fake.users.get(str(args.get("user")))
    if found is None:
        raise LookupError("user_not_found")
    return {"user": found}


@_method("conversations.replies")
def _replies(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _need(args, "channel", "ts")
    channel, ts = str(args["channel"]), str(args["ts"])
    thread = [
        m for m in fake.messages if m.channel == channel and (m.ts == ts or m.thread_ts == ts)
    ]
    return {"messages": [m.as_json() for m in thread], "has_more": False}


@_method("files.getUploadURLExternal")
def _upload_url(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    _need(args, "filename", "length")
    upload_id = secrets.token_hex(6)
    file_id = "F" + upload_id.upper()
    fake.uploads[upload_id] = {"file_id": file_id, "filename": args["filename"]}
    return {"upload_url": f"{fake.base_url}/upload/{upload_id}", "file_id": file_id}


@_method("files.completeUploadExternal")
def _complete_upload(fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
    files = args.get("files") or []
    ids = [str(f["id"]) for f in files]
    for upload in fake.uploads.values():
        if upload["file_id"] in ids:
            fake.files[upload["file_id"]] = (
                upload.get("data", b""),
                upload["filename"],
                "text/markdown",
            )
    channel = args.get("channel_id")
    if channel:
        message = FakeMessage(
            str(channel),
            fake.next_ts(),
            str(args.get("initial_comment") or ""),
            thread_ts=args.get("thread_ts"),
            user=fake.bot_user_id,
            files=ids,
        )
        fake.messages.append(message)
    return {"files": [{"id": i} for i in ids]}
