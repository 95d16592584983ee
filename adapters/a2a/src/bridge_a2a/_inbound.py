"""Inbound: an A2A message's parts turned into the conversations service's `Message`.

Text parts are the input text; file parts become upstream files (bytes re-hosted on the
bridge's signed URLs, https URIs passed through only when public); data parts become
additional context.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from a2a.types.a2a_pb2 import Message as A2AMessage
from a2a.utils.errors import InvalidParamsError
from a2a.utils.push_url_validator import validate_push_notification_url
from google.protobuf.json_format import MessageToDict

from bridge.conversations import Message
from bridge.files import FileHost
from bridge.models import InvokeOptions, User

__all__ = ["to_message"]


async def _file_url(url: str) -> str:
    if urlsplit(url).scheme != "https" or not await validate_push_notification_url(url):
        raise InvalidParamsError(
            message="file URLs must be public https URLs; send other files as bytes"
        )
    return url


async def to_message(
    message: A2AMessage,
    *,
    files: FileHost,
    user: User,
    principal: str,
    max_file_bytes: int,
    reply: dict[str, str],
) -> Message:
    """The bridge's message for an A2A message.

    Raises:
        InvalidParamsError: no text, a file too large, or a file URL that is not public https.
    """
    texts: list[str] = []
    urls: list[str] = []
    data: list[str] = []
    for index, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "raw":
            name = part.filename or f"file-{index + 1}"
            try:
                urls.append(
                    await files.publish_upload(
                        part.raw,
                        filename=name,
                        content_type=part.media_type or "application/octet-stream",
                        limit=max_file_bytes,
                        owner=principal or "",
                    )
                )
            except ValueError as exc:
                raise InvalidParamsError(message=f"file {name!r}: {exc}") from None
        elif kind == "url":
            urls.append(await _file_url(part.url))
        elif kind == "data":
            data.append(json.dumps(MessageToDict(part.data), ensure_ascii=False))
    text = "\n\n".join(chunk for chunk in texts if chunk.strip())
    if not text:
        raise InvalidParamsError(message="the message has no text part")
    options = InvokeOptions(additional_context="\n".join(data)) if data else None
    return Message(
        text=text,
        user=user,
        principal=principal,
        files=tuple(urls),
        reply=dict(reply),
        options=options,
    )
