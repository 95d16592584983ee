"""Bench: a 200-chunk, 10 s answer delivered to Slack by the bridge vs two naive bots.

Everything runs against the fake Slack Web API (rate tiers enforced) and the platform
emulator's `writer` agent. Prints time to first visible text, Web API calls and 429s.
Run: `uv run python bench/slack_stream.py`.
"""

from __future__ import annotations

import contextlib
import time

import anyio
import anyio.abc
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.client import AgentClient
from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.events import TextDelta
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

MESSAGE = "chunks=200 seconds=10"
API_KEY = "bench-key"


def _visible(slack: FakeSlack, since: float) -> float | None:
    for call in slack.calls:
        content = call.args.get("markdown_text") or call.args.get("text") or call.args.get("chunks")
        if (
            call.ok
            and call.method.startswith("chat.")
            and content
            and "Thinking" not in str(content)
        ):
            return call.at - since
    return None


def _web(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, retry_handlers=[])


async def _bridge(emulator: Emulator) -> tuple[float, int, int, bool]:
    async with open_fake_slack() as slack:
        config = SlackConfig(
            bot_token=slack.bot_token,
            signing_secret=slack.signing_secret,
            api_url=slack.api_url,
            default_agent="writer",
        )
        settings = load_settings(
            None,
            environ={},
            overrides={
                "upstream": {"base_url": emulator.base_url, "api_key": API_KEY},
                "store": {"url": "memory://"},
                "http": {"host": "127.0.0.1", "port": 0},
            },
        )

        async def run(*, task_status: anyio.abc.TaskStatus[Runtime]) -> None:
            await serve(settings, adapters=[SlackAdapter(config)], task_status=task_status)

        async with anyio.create_task_group() as group:
            runtime = await group.start(run)
            sender = EventSender(f"{runtime.http.base_url}/slack/events", slack.signing_secret)
            event = {
                "type": "app_mention",
                "channel": "C1",
                "user": "U1",
                "ts": "1700000000.000100",
                "text": f"<@UBOT> {MESSAGE}",
            }
            slack.calls.clear()
            start = time.monotonic()
            await sender.event(event_callback(event))
            with anyio.fail_after(60):
                final = await slack.wait_for(
                    lambda: [m for m in slack.replies("C1", event["ts"]) if not m.streaming]
                )
            group.cancel_scope.cancel()
        result = next(iter(emulator.tasks.values())).latest.result
        first = _visible(slack, start) or float("nan")
        return first, len(slack.calls), len(slack.rate_limited), final[0].visible_text == result


async def _naive_sync(emulator: Emulator, client: AgentClient) -> tuple[float, int, int]:
    async with open_fake_slack() as slack:
        web = _web(slack)
        start = time.monotonic()
        task = await client.invoke(emulator.agent("writer").id, MESSAGE)
        await web.chat_postMessage(
            channel="C1", thread_ts="1700000000.000200", text=task.result or ""
        )
        return _visible(slack, start) or float("nan"), len(slack.calls), len(slack.rate_limited)


async def _naive_per_chunk(emulator: Emulator, client: AgentClient) -> tuple[float, int, int]:
    async with open_fake_slack() as slack:
        web = _web(slack)
        start = time.monotonic()
        ts: str | None = None
        async with client.stream(emulator.agent("writer").id, MESSAGE) as run:
            async for event in run:
                if not isinstance(event, TextDelta):
                    continue
                if ts is None:
                    posted = await web.chat_postMessage(
                        channel="C1", thread_ts="1700000000.000300", text=run.text
                    )
                    ts = str(posted["ts"])
                    continue
                with contextlib.suppress(SlackApiError):  # the naive bot drops what Slack refuses
                    await web.chat_update(channel="C1", ts=ts, text=run.text)
        return _visible(slack, start) or float("nan"), len(slack.calls), len(slack.rate_limited)


async def main() -> None:
    async with (
        open_emulator(api_key=API_KEY) as emulator,
        AgentClient(base_url=emulator.base_url, api_key=API_KEY) as client,
    ):
        first, calls, limited, exact = await _bridge(emulator)
        sync_first, sync_calls, sync_limited = await _naive_sync(emulator, client)
        chunk_first, chunk_calls, chunk_limited = await _naive_per_chunk(emulator, client)
    rows = [
        ("bridge (native stream)", first, calls, limited),
        ("naive: sync invoke, post final", sync_first, sync_calls, sync_limited),
        ("naive: chat.update per chunk", chunk_first, chunk_calls, chunk_limited),
    ]
    print(f"slack_stream: writer agent, {MESSAGE!r}, fake Slack Web API with rate tiers")
    print(f"{'bot':34} {'first text (s)':>15} {'API calls':>10} {'429s':>6}")
    for name, seconds, count, refused in rows:
        print(f"{name:34} {seconds:15.3f} {count:10d} {refused:6d}")
    print(f"first text vs naive wait: {first / sync_first:.3f}x (goal <= 0.1x)")
    print(f"calls vs per-chunk bot:   {calls / chunk_calls:.3f}x (goal <= 0.1x)")
    print(f"429s answered to the bridge: {limited} (goal 0); final text canonical: {exact}")


if __name__ == "__main__":
    anyio.run(main)
