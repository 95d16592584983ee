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

from bridge.chat import ApprovalRequest, Failure, Progress, SignInRequest, Step
from bridge.render import escape_slack_markdown
from bridge.scheduler import OutputScheduler, Priority
from bridge_slack._api import SlackApi, SlackCallError
from bridge_slack._render import MARKDOWN_LIMIT, body_blocks, final_parts, progress_body

__all__ = ["SlackAnswer", "SlackPlace", "note"]

logger = logging.getLogger(__name__)

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

    @property
    def principal(self) -> str:
        return f"{self.team}:{self.user}"


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
        f"slack:{place.channel}:{place.thread_ts}",
        lambda: api.call(
            "chat.postEphemeral",
            channel=place.channel,
            user=place.user,
            thread_ts=place.thread_ts or None,
            text=text,
        ),
        priority=priority,
        buckets=[f"slack:{place.team}:chat.postEphemeral"],
    )


async def _no_record(reply: SlackPlace) -> None:
    return None


class SlackAnswer:
    """One answer being drawn in a thread (implements `bridge.chat.AnswerView`)."""

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
        self.ts: str | None = place.ts
        self.prompts = 0
        self._chunks: list[dict[str, Any]] = []
        self._posted: dict[int, str] = {}
        self._status_ok = True
        self._status_set = False
        self.dest = f"slack:{place.channel}:{place.thread_ts}"

    def _bucket(self, method: str) -> str:
        if method == "chat.postMessage":
            return f"slack:{self.place.channel}:post"
        return f"slack:{self.place.team}:{method}"

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
        await self._prompt(f"{self.turn_id}:hitl:{self.prompts}", text)

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
        self.scheduler.post(
            self.dest,
            self._flush,
            slot="body",
            priority=Priority.DELTA,
            buckets=[self._bucket(method)],
        )

    async def _send(
        self,
        call: Callable[[], Awaitable[Any]],
        method: str,
        priority: Priority = Priority.FINAL,
        slot: str | None = None,
    ) -> None:
        await self.scheduler.submit(
            self.dest, call, slot=slot, priority=priority, buckets=[self._bucket(method)]
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
                channel_id=self.place.channel,
                thread_ts=self.place.thread_ts,
                status=text,
            )
        except SlackCallError as exc:
            logger.debug("no thread status in %s: %s", self.place.channel, exc.error)
            self._status_ok = False

    async def _prompt(self, tag: str, text: str) -> None:
        place = self.place
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
            self.ts = str(started["ts"])
            await self.record(self.place.model_copy(update={"ts": self.ts, "mode": "stream"}))
        else:
            await self.api.call("chat.appendStream", channel=w.channel, ts=self.ts, **content)
        self.sent += used
        del self._chunks[: len(chunks)]

    async def _update_step(self) -> None:
        body = (
            progress_body(self._escape(self.streamed)) if self.streamed.strip() else "_Thinking…_"
        )
        await self._draw(0, body, self.stop_value)

    async def _draw(self, index: int, body: str, stop_value: str | None = None) -> None:
        """Bring message `index` of the answer to `body` (post it once, then edit it)."""
        w = self.place
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
                await self.record(self.place.model_copy(update={"ts": ts, "mode": "update"}))
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
        first = "chat.update" if self.ts else "chat.postMessage"
        await self._send(lambda: self._final_first(parts[0]), first, slot="body")
        for index, part in enumerate(parts[1:], start=1):
            await self._send(lambda i=index, p=part: self._draw(i, p), "chat.postMessage")  # type: ignore[misc]
        if attach:
            place = self.place
            await self._send(
                lambda: self.api.upload(
                    place.channel, place.thread_ts, text, "answer.md", "The full answer"
                ),
                "files.upload",
            )
        self.status("")

    async def _final_first(self, part: str) -> None:
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
        await self._draw(0, part)

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
