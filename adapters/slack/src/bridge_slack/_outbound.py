"""Turn events → Slack calls for one answer, through the output scheduler.

`Reply` streams natively (`chat.startStream` / `appendStream` / `stopStream`, tool
calls as `task_update` chunks) or, when streaming is unavailable or fails, keeps one
message up to date with `chat.update`. The final message is always the canonical answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from bridge.errors import PlatformError
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    Event,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.render import escape_slack_markdown
from bridge.scheduler import OutputScheduler, Priority
from bridge_slack._api import SlackApi, SlackCallError
from bridge_slack._render import MARKDOWN_LIMIT, body_blocks, final_parts, hitl_text, progress_body

__all__ = ["Reply", "Where"]

logger = logging.getLogger(__name__)

Record = Callable[..., Awaitable[None]]


async def _no_record(**reply: Any) -> None:
    return None


@dataclass(frozen=True)
class Where:
    """The thread an answer goes to, and who asked (streaming needs the recipient)."""

    team: str
    channel: str
    thread_ts: str
    user: str
    is_dm: bool


class Reply:
    """One answer being drawn in a thread."""

    def __init__(
        self,
        api: SlackApi,
        scheduler: OutputScheduler,
        where: Where,
        *,
        turn_id: str,
        streaming: bool,
        stop_value: str | None = None,
        max_parts: int = 4,
        record: Record = _no_record,
        on_unsupported: Callable[[], None] | None = None,
        mentions: Collection[str] = (),
    ) -> None:
        self.api, self.scheduler, self.where = api, scheduler, where
        self.turn_id = turn_id
        self.mode = "stream" if streaming else "update"
        self.stop_value = stop_value
        self.max_parts = max_parts
        self.record = record
        self.on_unsupported = on_unsupported
        self.mentions = tuple(mentions)
        self.text = ""
        self.sent = 0
        self.ts: str | None = None
        self.prompts = 0
        self._chunks: list[dict[str, Any]] = []
        self._posted: dict[int, str] = {}
        self._status_ok = True
        self._status_set = False
        self.dest = f"slack:{where.channel}:{where.thread_ts}"

    def _bucket(self, method: str) -> str:
        if method == "chat.postMessage":
            return f"slack:{self.where.channel}:post"
        return f"slack:{self.where.team}:{method}"

    # -- events -------------------------------------------------------------

    async def start(self) -> None:
        self.status("is thinking…")
        if self.mode == "update":
            self._kick()

    async def on_event(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
            self._kick()
        elif isinstance(event, ToolCallRequested):
            self._task_chunk(event, "in_progress")
            self.status(f"is using {event.name}…")
        elif isinstance(event, ToolCallFinished):
            self._task_chunk(event, "error" if event.is_error else "complete")
        elif isinstance(event, ThoughtRecorded | AnalysisRecorded) and event.text:
            self.status(event.text[:120])
        elif isinstance(event, TaskUpdated) and event.task.is_paused and event.task.hitl_request:
            self.prompts += 1
            text = self._escape(hitl_text(event.task))
            await self._prompt(f"{self.turn_id}:hitl:{self.prompts}", text)
        elif isinstance(event, AuthEventReceived) and event.is_login_required and event.url:
            await self.private_link(event.url, event.server_name)

    def _task_chunk(self, event: ToolCallRequested | ToolCallFinished, status: str) -> None:
        if self.mode != "stream":
            return
        call_id = event.task_id or ""
        self._chunks.append(
            {
                "type": "task_update",
                "id": f"{event.name}:{call_id}"[:64],
                "title": event.name,
                "status": status,
            }
        )
        self._kick()

    def _kick(self) -> None:
        method = (
            ("chat.startStream" if self.ts is None else "chat.appendStream")
            if self.mode == "stream"
            else ("chat.postMessage" if self.ts is None else "chat.update")
        )
        self.scheduler.post(
            self.dest,
            self._flush,
            slot="body",
            priority=Priority.DELTA,
            buckets=[self._bucket(method)],
        )

    # -- status and prompts -------------------------------------------------------

    def status(self, text: str) -> None:
        """The thread's "is thinking…" line (`assistant.threads.setStatus`); best effort."""
        if not self._status_ok or (not text and not self._status_set):
            return
        self._status_set = self._status_set or bool(text)
        self.scheduler.post(
            self.dest + ":status",
            lambda: self._set_status(text),
            slot="status",
            priority=Priority.STATUS,
            text=text,
            buckets=[self._bucket("assistant.threads.setStatus")],
        )

    async def _set_status(self, text: str) -> None:
        try:
            await self.api.call(
                "assistant.threads.setStatus",
                channel_id=self.where.channel,
                thread_ts=self.where.thread_ts,
                status=text,
            )
        except SlackCallError as exc:
            logger.debug("no thread status in %s: %s", self.where.channel, exc.error)
            self._status_ok = False

    async def _prompt(self, tag: str, text: str) -> None:
        await self.scheduler.submit(
            self.dest,
            lambda: self.api.post_once(
                tag,
                channel=self.where.channel,
                thread_ts=self.where.thread_ts,
                text=text,
                blocks=body_blocks(text),
            ),
            priority=Priority.PROMPT,
            buckets=[self._bucket("chat.postMessage")],
        )

    async def private_link(self, url: str, service: str | None) -> None:
        """A sign-in link for the requesting user only (ephemeral), never in the channel."""
        where = f" to {self._escape(service)}" if service else ""
        if url.startswith(("https://", "http://")):
            link = "<" + url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
            link = link.replace("|", "%7C") + "|sign in>"
        else:  # no other scheme becomes a link (`<!here|…>` would ping the channel)
            link = self._escape(url)
        text = f"To continue, sign in{where}: {link}"
        await self.scheduler.submit(
            self.dest,
            lambda: self.api.call(
                "chat.postEphemeral",
                channel=self.where.channel,
                user=self.where.user,
                thread_ts=self.where.thread_ts,
                text=text,
            ),
            priority=Priority.PROMPT,
            buckets=[self._bucket("chat.postEphemeral")],
        )

    # -- drawing ---------------------------------------------------------------------

    async def _flush(self) -> None:
        if self.mode == "stream":
            try:
                await self._stream_step()
                return
            except SlackCallError as exc:
                if self.ts is not None:
                    logger.warning(
                        "stream of %s broke (%s): updating the message instead",
                        self.dest,
                        exc.error,
                    )
                else:
                    logger.info(
                        "no native stream in %s (%s): this answer is updated instead",
                        self.dest,
                        exc.error,
                    )
                    if self.on_unsupported is not None:
                        self.on_unsupported()
                self.mode = "update"
        try:
            await self._update_step()
        except SlackCallError as exc:
            logger.warning("could not update the answer in %s: %s", self.dest, exc.error)

    def _escape(self, text: str, *, at_line_start: bool = True) -> str:
        """Agent output as it may reach Slack: no mention or control sequence it did not
        allow (`[adapters.slack] allow_mentions`)."""
        return escape_slack_markdown(text, allow=self.mentions, at_line_start=at_line_start)

    def _next_piece(self, limit: int) -> tuple[str, int]:
        """The escaped text from `sent` on, at most `limit` characters; and how much it uses."""
        start = self.sent
        at_line_start = start == 0 or self.text[start - 1] == "\n"
        size = limit
        while True:
            raw = self.text[start : start + size]
            piece = self._escape(raw, at_line_start=at_line_start)
            if len(piece) <= limit:
                return piece, len(raw)
            size = max(1, size * limit // len(piece) - 1)

    async def _stream_step(self, *, limit: int = MARKDOWN_LIMIT) -> None:
        piece, used = self._next_piece(limit)
        chunks = list(self._chunks)
        if not piece and not chunks:
            return
        content: dict[str, Any] = {"markdown_text": piece or None}
        if chunks:
            text_chunk = [{"type": "markdown_text", "text": piece}] if piece else []
            content = {"chunks": [*chunks, *text_chunk]}
        w = self.where
        if self.ts is None:
            recipient: dict[str, Any] = (
                {} if w.is_dm else {"recipient_team_id": w.team, "recipient_user_id": w.user}
            )
            started = await self.api.call(
                "chat.startStream", channel=w.channel, thread_ts=w.thread_ts, **recipient, **content
            )
            self.ts = str(started["ts"])
            await self.record(ts=self.ts, mode="stream")
        else:
            await self.api.call("chat.appendStream", channel=w.channel, ts=self.ts, **content)
        self.sent += used
        del self._chunks[: len(chunks)]

    async def _update_step(self) -> None:
        body = progress_body(self._escape(self.text)) if self.text.strip() else "_Thinking…_"
        await self._draw(0, body, self.stop_value)

    async def _draw(self, index: int, body: str, stop_value: str | None = None) -> None:
        """Bring message `index` of the answer to `body` (post it once, then edit it)."""
        w = self.where
        blocks = body_blocks(body, stop_value)
        ts = self.ts if index == 0 else self._posted.get(index)
        if ts is None:
            ts = await self.api.post_once(
                f"{self.turn_id}:{index}",
                channel=w.channel,
                thread_ts=w.thread_ts,
                text=body[:3000],
                blocks=blocks,
            )
            if index == 0:
                self.ts = ts
                await self.record(ts=ts, mode="update")
            else:
                self._posted[index] = ts
        else:
            await self.api.call(
                "chat.update", channel=w.channel, ts=ts, text=body[:3000], blocks=blocks
            )

    # -- the final answer ---------------------------------------------------------------

    async def finish(self, text: str) -> None:
        """Commit the canonical answer: split at clean boundaries, or attach a file beyond
        `max_parts` messages. Raises `PlatformError` when Slack refuses it."""
        parts = final_parts(self._escape(text))
        attach = len(parts) > self.max_parts
        if attach:
            parts = [parts[0] + "\n\n_The full answer is attached as a file._"]
        first = self._bucket("chat.update" if self.ts else "chat.postMessage")
        await self.scheduler.submit(
            self.dest,
            lambda: self._final_first(parts[0]),
            slot="body",
            priority=Priority.FINAL,
            buckets=[first],
        )
        for index, part in enumerate(parts[1:], start=1):
            await self.scheduler.submit(
                self.dest,
                lambda i=index, p=part: self._draw(i, p),  # type: ignore[misc]
                priority=Priority.FINAL,
                buckets=[self._bucket("chat.postMessage")],
            )
        if attach:
            await self.scheduler.submit(
                self.dest,
                lambda: self.api.upload(
                    self.where.channel, self.where.thread_ts, text, "answer.md", "The full answer"
                ),
                priority=Priority.FINAL,
                buckets=[self._bucket("files.upload")],
            )
        self.status("")

    async def _final_first(self, part: str) -> None:
        if self.mode == "stream" and self.ts is not None:
            streamed_all = self._escape(self.text) == part
            try:
                rest, used = self._next_piece(MARKDOWN_LIMIT)
                while self.sent + used < len(self.text):
                    await self._stream_step()
                    rest, used = self._next_piece(MARKDOWN_LIMIT)
                await self.api.call(
                    "chat.stopStream",
                    channel=self.where.channel,
                    ts=self.ts,
                    markdown_text=rest or None,
                )
                self.sent = len(self.text)
                self.mode = "update"
                if streamed_all:
                    return
            except SlackCallError as exc:
                logger.warning("could not stop the stream in %s: %s", self.dest, exc.error)
                self.mode = "update"
        await self._draw(0, part)

    async def stop_stream_quietly(self) -> None:
        """End a stream left open by a crashed process (recovery); ignore Slack's refusal."""
        if self.ts is None:
            return
        try:
            await self.api.call("chat.stopStream", channel=self.where.channel, ts=self.ts)
        except PlatformError as exc:
            logger.debug("stream %s not stopped: %s", self.ts, exc)
