"""Socket Mode, the slash command, the app manifest, and crash recovery."""

from __future__ import annotations

import io
import json
from pathlib import Path

import anyio
from bridge_slack import SlackAdapter
from bridge_slack.testing import FakeMessage, FakeSlack, event_callback

from bridge.adapters import CommandContext
from bridge.client import AgentClient
from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.stores import InFlightTurn, open_store
from tests.slack.conftest import API_KEY, next_ts, serving
from tests.slack.conftest import final_texts as _final


async def test_socket_mode_mention_is_acked_and_answered_once(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, mode="socket"):
        event = {
            "type": "app_mention",
            "channel": "C1",
            "user": "U1",
            "text": "<@UBOT> over the socket",
            "ts": next_ts(),
        }
        payload = event_callback(event)
        with anyio.fail_after(10):
            await slack.send_envelope("events_api", payload)
            await slack.send_envelope("events_api", payload, retry_attempt=1)
            final = await slack.wait_for(lambda: _final(slack, "C1", event["ts"]))
    assert final == ["over the socket"]
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["over the socket"]


async def test_slash_command_names_the_agent_and_answers_under_its_reposted_question(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack) as bridge:
        fields = {
            "command": "/agent",
            "text": "agent:researcher otters",
            "team_id": "T0001",
            "channel_id": "C1",
            "user_id": "U1",
            "trigger_id": "t.1",
            "response_url": "http://127.0.0.1:9/unused",
        }
        assert (await bridge.events.command(fields)).status_code == 200
        with anyio.fail_after(10):
            root = await slack.wait_for(lambda: [m for m in slack.messages if m.thread_ts is None])
            final = await slack.wait_for(lambda: _final(slack, "C1", root[0].ts))
    assert root[0].text == "<@U1> asked: agent:researcher otters"
    assert "otters" in final[0] and emulator.agent("researcher").id in emulator.invokes()[-1].path


async def test_manifest_command_prints_http_request_urls_from_the_config() -> None:
    settings = load_settings(
        None,
        overrides={
            "http": {"public_url": "https://bridge.example.com"},
            "adapters": {"slack": {"mode": "http", "slash_command": "/ask"}},
        },
        environ={},
    )
    out, err = io.StringIO(), io.StringIO()
    ctx = CommandContext(settings=settings, open_runtime=lambda: None, out=out, err=err)
    assert await SlackAdapter.command(ctx, ["manifest"]) == 0
    manifest = json.loads(out.getvalue())
    assert manifest["settings"]["event_subscriptions"]["request_url"] == (
        "https://bridge.example.com/slack/events"
    )
    assert manifest["features"]["slash_commands"][0]["command"] == "/ask"
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert "chat:write" in manifest["oauth_config"]["scopes"]["bot"]


async def _record_dead_turn(
    emulator: Emulator, store_url: str, text: str, root: str, **reply: object
) -> None:
    """A turn whose replica died while drawing its answer in the thread `root` of C1."""
    async with AgentClient(base_url=emulator.base_url, api_key=API_KEY) as client:
        task = await client.invoke(emulator.agent("echo").id, text)
    store = open_store(store_url)
    await store.open()
    await store.record_turn(
        InFlightTurn(
            turn_id="dead-turn",
            key=f"slack|T0001:C1|{root}",
            adapter="slack",
            agent_id=emulator.agent("echo").id,
            text="lost",
            source="slack",
            task_id=task.id,
            holder="replica-dead",
            reply={"channel": "C1", "thread_ts": root, "team": "T0001", "user": "U1", **reply},
        )
    )
    await store.close()


async def test_recovery_edits_the_recorded_reply_of_a_dead_replica_to_the_final_answer(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    root = "1700000000.999999"
    placeholder = FakeMessage("C1", slack.next_ts(), "_Thinking…_", thread_ts=root)
    slack.messages.append(placeholder)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    await _record_dead_turn(
        emulator, store_url, "finished answer", root, ts=placeholder.ts, mode="update"
    )
    async with serving(emulator, slack, store_url=store_url):
        with anyio.fail_after(10):
            await slack.wait_for(lambda: placeholder.visible_text == "finished answer")
    assert slack.replies("C1", root) == [placeholder]


async def test_recovery_finishes_the_recorded_overflow_parts_instead_of_posting_them_again(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    root = "1700000000.999998"
    first_half, second_half = "a" * 7000, "b" * 7000
    placeholder = FakeMessage("C1", slack.next_ts(), "a" * 10, thread_ts=root)
    part = FakeMessage("C1", slack.next_ts(), "b" * 10, thread_ts=root)
    slack.messages += [placeholder, part]
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    answer = f"{first_half}\n\n{second_half}"
    await _record_dead_turn(
        emulator, store_url, answer, root, ts=placeholder.ts, mode="update", parts=[part.ts]
    )
    async with serving(emulator, slack, store_url=store_url):
        with anyio.fail_after(10):
            await slack.wait_for(lambda: part.visible_text == second_half)
    assert placeholder.visible_text == first_half
    assert slack.replies("C1", root) == [placeholder, part]


async def test_recovery_edits_a_placeholder_a_dead_replica_posted_but_never_recorded(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    """Posted but killed before it was recorded: found by its tag."""
    root = "1700000000.999997"
    tag = {"event_type": "bridge_reply", "event_payload": {"tag": "dead-turn:0"}}
    placeholder = FakeMessage("C1", slack.next_ts(), "_Thinking…_", thread_ts=root, metadata=tag)
    slack.messages.append(placeholder)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    await _record_dead_turn(emulator, store_url, "finished answer", root)
    async with serving(emulator, slack, store_url=store_url):
        with anyio.fail_after(10):
            await slack.wait_for(lambda: placeholder.visible_text == "finished answer")
    assert slack.replies("C1", root) == [placeholder]


async def test_recovery_stops_a_dead_replicas_stream_even_when_slack_says_slow_down(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    root = "1700000000.999998"
    stream = FakeMessage("C1", slack.next_ts(), "", thread_ts=root, streaming=True)
    slack.messages.append(stream)
    slack.fail("chat.stopStream", retry_after=0.2)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    await _record_dead_turn(
        emulator, store_url, "streamed answer", root, ts=stream.ts, mode="stream"
    )
    async with serving(emulator, slack, store_url=store_url):
        with anyio.fail_after(10):
            await slack.wait_for(
                lambda: not stream.streaming and stream.visible_text == "streamed answer"
            )
    assert slack.replies("C1", root) == [stream]
    assert len(slack.rate_limited) == 1
