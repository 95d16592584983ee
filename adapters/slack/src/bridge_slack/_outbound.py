"""How Slack shows one answer (`SlackAnswer`, the chat layer's `AnswerView`), through the output
scheduler: native streams (`chat.startStream` / `appendStream` / `stopStream`, steps as
`task_update` chunks) or, when streaming is unavailable or fails, one message kept up to
date with `chat.update`. The final message is always the canonical answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Literal

from pydantic import BaseModel

from bridge.chat import AnswerMessages, ApprovalRequest, Failure, Progress, SignInRequest, Step
from bridge.render import escape_slack_markdown, slack_preview
from bridge.scheduler import Bucket, Destination, OutputScheduler, Priority
from bridge_slack._api import SlackApi, SlackCallError
from bridge_slack._render import MARKDOWN_LIMIT, Body, body_blocks, final_parts

__all__ = ["SlackAnswer", "SlackPlace", "note"]

logger = logging.getLogger(__name__)

SLACK = "slack"
_CARD_STATUS = {"running": "in_progress", "done": "complete", "failed": "error"}


class SlackPlace(BaseModel):
    """Where a turn's answer goes and is drawn: what Slack keeps in the in-flight record's
    `reply` (recovery reads it back with `model_validate`)."""

    channel: str
    thread_ts: str
    team: str = ""
    user: str = ""
    """Who asked: streams and private notes need the recipient."""
    is_dm: bool = False
    ts: str | None = None
    """The answer's first message, once posted."""
    mode: Literal["stream", "update"] | None = None
    parts: tuple[str, ...] = ()
    """The messages carrying the overflow of a long answer, in order, once posted."""

    @property
    def principal(self) -> str:
        return f"{self.team}:{self.user}"

    @property
    def destination(self) -> Destination:
        """The thread: its calls run one at a time."""
        return Destination(SLACK, f"{self.channel}:{self.thread_ts}")

    def bucket(self, method: str) -> Bucket:
        """Posts draw from the channel's budget, other methods from the workspace's."""
        if method == "chat.postMessage":
            return Bucket(SLACK, self.channel, "post")
        return Bucket(SLACK, self.team, method)


Record = Callable[[SlackPlace], Awaitable[None]]


async def note(
    api: SlackApi,
    scheduler: OutputScheduler,
    place: SlackPlace,
    text: str,
    priority: Priority = Priority.DELTA,
) -> None:
    """A private note (ephemeral) to `place.user`, in the thread. Raises `PlatformError`."""
    await scheduler.submit(
        place.destination,
        lambda: api.call(
            "chat.postEphemeral",
            channel=place.channel,
            user=place.user,
            thread_ts=place.thread_ts or None,
            text=text,
        ),
        priority=priority,
        buckets=[place.bucket("chat.postEphemeral")],
    )


async def _no_record(reply: SlackPlace) -> None:
    return None


class SlackAnswer:
    """One answer being drawn in a thread (implements `bridge.chat.AnswerView`). Its
    messages (`bridge.chat.AnswerMessages`) are the first one, streamed or updated, then
    the overflow parts, each recorded through `record` as soon as it is posted."""

    def __init__(
        self,
        api: SlackApi,
        scheduler: OutputScheduler,
        place: SlackPlace,
        *,
        turn_id: str,
        streaming: bool,
        stop_value: str | None = None,
        max_parts: int = 4,
        record: Record = _no_record,
        on_unsupported: Callable[[], None] | None = None,
        mentions: Collection[str] = (),
    ) -> None:
        self.api, self.scheduler, self.place = api, scheduler, place
        self.turn_id = turn_id
        self.mode = "stream" if streaming else "update"
        self.stop_value = stop_value
        self.max_parts = max_parts
        self.record = record
        self.on_unsupported = on_unsupported
        self.mentions = tuple(mentions)
        self.streamed = ""
        self.sent = 0
        self.prompts = 0
        self._chunks: list[dict[str, Any]] = []
        self._status_ok = True
        self._status_set = False
        self.dest = place.destination
        self.messages = AnswerMessages[Body, str](
            scheduler, self.dest, self, ids=[place.ts, *place.parts], slot="body"
        )

    @property
    def ts(self) -> str | None:
        """The answer's first message (a stream or a message), once posted."""
        return self.messages.first

    # -- the AnswerView -----------------------------------------------------------

    async def start(self) -> None:
        """The message that will carry the answer, before any answer text: a placeholder
        (tagged, so recovery finds it even unrecorded), or a stream started empty and
        recorded before the turn goes on (a stream has no tag to be found by)."""
        self.status("is thinking…")
        if self.mode == "update":
            self._kick()
        elif self.ts is None:
            await self._send(self._flush, "chat.startStream", slot="body")

    async def text(self, delta: str, streamed: str) -> None:
        self.streamed = streamed
        self._kick()

    async def progress(self, step: Step, progress: Progress) -> None:
        """The current step as the thread's status; steps other than thoughts as task cards
        of the stream."""
        if step.kind == "tool" and step.state == "running":
            self.status(f"is using {step.label}…")
        elif step.kind in ("thinking", "resumed"):
            self.status(step.line[:120])
        if self.mode == "stream" and step.kind != "thinking":
            card = {"type": "task_update", "id": step.key[:64], "title": step.label[:256]}
            self._chunks.append({**card, "status": _CARD_STATUS[step.state]})
            self._kick()

    async def approval(self, request: ApprovalRequest) -> None:
        self.prompts += 1
        text = self._escape(request.text)
        if request.url:
            text += f"\n{_link(request.url, 'Open the approval')}"
        place, tag = self.place, f"{self.turn_id}:hitl:{self.prompts}"
        await self._send(
            lambda: self.api.post_once(
                tag,
                channel=place.channel,
                thread_ts=place.thread_ts,
                text=text,
                blocks=body_blocks(text),
            ),
            "chat.postMessage",
            Priority.PROMPT,
        )

    async def sign_in(self, request: SignInRequest) -> None:
        """A sign-in link for the requesting user only (ephemeral), never in the channel."""
        text = f"To continue, sign in to {self._escape(request.server)}: "
        text += _link(request.url, "sign in")
        await note(self.api, self.scheduler, self.place, text, Priority.PROMPT)

    async def fail(self, failure: Failure, streamed: str) -> None:
        """What was shown so far, then the failure's wording (alone when the answer itself
        could not be shown)."""
        if failure.kind == "not_shown" or not streamed.strip():
            await self.finish(failure.text)
        else:
            await self.finish(f"{streamed.rstrip()}\n\n{failure.text}")

    def _kick(self) -> None:
        method = (
            ("chat.startStream" if self.ts is None else "chat.appendStream")
            if self.mode == "stream"
            else ("chat.postMessage" if self.ts is None else "chat.update")
        )
        self.messages.refresh(self._flush, buckets=[self.place.bucket(method)])

    async def _send(
        self,
        call: Callable[[], Awaitable[Any]],
        method: str,
        priority: Priority = Priority.FINAL,
        slot: str | None = None,
    ) -> None:
        await self.scheduler.submit(
            self.dest, call, slot=slot, priority=priority, buckets=[self.place.bucket(method)]
        )

    # -- the answer's messages (`bridge.chat.MessageCalls`) -------------------------------

    async def post(self, index: int, content: Body) -> str:
        """Posted once: a retry after an unknown outcome finds the tagged message first."""
        place = self.place
        return await self.api.post_once(
            f"{self.turn_id}:{index}",
            channel=place.channel,
            thread_ts=place.thread_ts,
            **content.fields(),
        )

    async def edit(self, message: str, content: Body) -> None:
        await self.api.call(
            "chat.update", channel=self.place.channel, ts=message, **content.fields()
        )

    async def posted(self, index: int, message: str) -> None:
        changes = (
            {"ts": message, "mode": "update"}
            if index == 0
            else {"parts": tuple(self.messages.ids[1:])}
        )
        self.place = self.place.model_copy(update=changes)
        await self.record(self.place)

    def buckets(self, *, posting: bool) -> list[Bucket]:
        return [self.place.bucket("chat.postMessage" if posting else "chat.update")]

    # -- status and prompts -------------------------------------------------------

    def status(self, text: str) -> None:
        """The thread's "is thinking…" line (`assistant.threads.setStatus`); best effort."""
        if not self._status_ok or (not text and not self._status_set):
            return
        self._status_set = self._status_set or bool(text)
        self.scheduler.post(
            Destination(SLACK, f"{self.dest.space}:status"),
            lambda: self._set_status(text),
            slot="status",
            priority=Priority.STATUS,
            text=text,
            buckets=[self.place.bucket("assistant.threads.setStatus")],
        )

    async def _set_status(self, text: str) -> None:
        try:
            await self.api.call(
                "assistant.threads.setStatus",
                channel_id=self.place.channel,
                thread_ts=self.place.thread_ts,
                status=text,
            )
        except SlackCallError as exc:
            logger.debug("no thread status in %s: %s", self.place.channel, exc.error)
            self._status_ok = False

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
        at_line_start = start == 0 or self.streamed[start - 1] == "\n"
        size = limit
        while True:
            raw = self.streamed[start : start + size]
            piece = self._escape(raw, at_line_start=at_line_start)
            if len(piece) <= limit:
                return piece, len(raw)
            size = max(1, size * limit // len(piece) - 1)

    async def _stream_step(self, *, limit: int = MARKDOWN_LIMIT) -> None:
        piece, used = self._next_piece(limit)
        chunks = list(self._chunks)
        if not piece and not chunks and self.ts is not None:
            return
        content: dict[str, Any] = {"markdown_text": piece or None}
        if chunks:
            text_chunk = [{"type": "markdown_text", "text": piece}] if piece else []
            content = {"chunks": [*chunks, *text_chunk]}
        w = self.place
        if self.ts is None:
            recipient: dict[str, Any] = (
                {} if w.is_dm else {"recipient_team_id": w.team, "recipient_user_id": w.user}
            )
            started = await self.api.call(
                "chat.startStream", channel=w.channel, thread_ts=w.thread_ts, **recipient, **content
            )
            self.messages.ids[0] = str(started["ts"])
            self.place = self.place.model_copy(update={"ts": self.ts, "mode": "stream"})
            await self.record(self.place)
        else:
            await self.api.call("chat.appendStream", channel=w.channel, ts=self.ts, **content)
        self.sent += used
        del self._chunks[: len(chunks)]

    async def _update_step(self) -> None:
        body = (
            slack_preview(self._escape(self.streamed)) if self.streamed.strip() else "_Thinking…_"
        )
        await self.messages.draw(0, Body(body, self.stop_value))

    # -- the final answer ---------------------------------------------------------------

    async def finish(self, text: str) -> None:
        """Commit the canonical answer: split at clean boundaries, or attach a file beyond
        `max_parts` messages. Raises `PlatformError` when Slack refuses it."""
        parts = final_parts(self._escape(text))
        attach = len(parts) > self.max_parts
        if attach:
            parts = [parts[0] + "\n\n_The full answer is attached as a file._"]
        await self.messages.finish([Body(part) for part in parts], self._final_first)
        if attach:
            place = self.place
            await self._send(
                lambda: self.api.upload(
                    place.channel, place.thread_ts, text, "answer.md", "The full answer"
                ),
                "files.upload",
                Priority.FINAL,
            )
        self.status("")

    async def _final_first(self, body: Body) -> None:
        part = body.text
        if self.mode == "stream" and self.ts is not None:
            streamed_all = self._escape(self.streamed) == part
            fresh = not self.streamed  # the stream shows nothing yet: it ends with the answer
            try:
                rest, used = (part, 0) if fresh else self._next_piece(MARKDOWN_LIMIT)
                while self.sent + used < len(self.streamed):
                    await self._stream_step()
                    rest, used = self._next_piece(MARKDOWN_LIMIT)
                await self.api.call(
                    "chat.stopStream",
                    channel=self.place.channel,
                    ts=self.ts,
                    markdown_text=rest or None,
                )
                self.sent = len(self.streamed)
                self.mode = "update"
                if streamed_all or fresh:
                    return
            except SlackCallError as exc:
                logger.warning("could not stop the stream in %s: %s", self.dest, exc.error)
                self.mode = "update"
        await self.messages.draw(0, body)

    async def stop_stream_quietly(self) -> None:
        """End a stream left open by a crashed process (recovery), through the scheduler
        (a rate limit is waited out, never taken for a refusal); ignore Slack's refusal
        (the stream had ended already)."""
        if self.ts is None:
            return
        ts = self.ts
        try:
            await self._send(
                lambda: self.api.call("chat.stopStream", channel=self.place.channel, ts=ts),
                "chat.stopStream",
            )
        except SlackCallError as exc:
            logger.debug("stream %s not stopped: %s", ts, exc.error)


def _link(url: str, label: str) -> str:
    """A web link (`SignInRequest` and `ApprovalRequest` keep only http(s)) as Slack markup."""
    quoted = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
    return f"<{quoted.replace('|', '%7C')}|{label}>"
