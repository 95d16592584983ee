"""Approval requests, sign-in links sent privately, re-hosted files, allow-lists."""

from __future__ import annotations

import json

import anyio
import httpx
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator

from .conftest import ALICE, BOB, GROUP, running_bridge


async def test_a_paused_task_shows_the_approval_request_and_then_the_answer(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, default_agent="approver"):
        fake.queue(ALICE.says(fake, ALICE.id, "delete the logs"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any("Approval" in m.text for m in fake.sent(ALICE.id)))
            task = next(iter(emulator.tasks.values()))
            emulator.resume(task.id, approved=True)
            await fake.wait_for(
                lambda: any("Done: delete the logs" in m.text for m in fake.sent(ALICE.id))
            )
    prompt = next(m for m in fake.sent(ALICE.id) if "Approval" in m.text)
    assert "delete the logs" in prompt.text


async def test_a_sign_in_link_goes_to_the_user_privately_never_into_the_group(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, default_agent="signin"):
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot read my mail"))
        with anyio.fail_after(10):
            await fake.wait_for(
                lambda: any("/_emulator/login/" in m.text for m in fake.sent(BOB.id))
            )
            task = next(iter(emulator.tasks.values()))
            emulator.complete_login(task.id)
            await fake.wait_for(
                lambda: any("Done: read my mail" in m.text for m in fake.sent(GROUP))
            )
    group_calls = [c for c in fake.calls if str(c.params.get("chat_id")) == str(GROUP)]
    assert not any("/_emulator/login/" in json.dumps(c.params) for c in group_calls)
    assert any("private message" in m.text for m in fake.sent(GROUP))


async def test_files_are_re_hosted_on_signed_bridge_urls_and_the_token_never_leaves(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake) as (runtime, _):
        fake.queue(
            ALICE.says(fake, ALICE.id, "summarise this", document=("notes.txt", b"hello file"))
        )
        fake.queue(ALICE.says(fake, ALICE.id, "and this", photo=b"\xff\xd8jpeg-bytes"))
        with anyio.fail_after(10):
            for text in ("summarise this", "and this"):
                await fake.wait_for(
                    lambda text=text: any(m.text == text for m in fake.sent(ALICE.id))
                )
        invokes = emulator.invokes()
        urls = [url for r in invokes for url in r.json["input"]["files"]]
        async with httpx.AsyncClient() as client:
            bodies = [(await client.get(url)).content for url in urls]
    assert len(urls) == 2
    assert all(url.startswith(f"{runtime.http.base_url}/files/") for url in urls)
    assert sorted(bodies) == sorted([b"hello file", b"\xff\xd8jpeg-bytes"])
    upstream = json.dumps([r.to_json() for r in emulator.requests])
    assert fake.token not in upstream
    assert fake.api_url not in upstream


async def test_only_allowed_users_are_answered(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake, allowed_user_ids=[ALICE.id]):
        fake.queue(BOB.says(fake, BOB.id, "let me in"))
        fake.queue(ALICE.says(fake, ALICE.id, "hello"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "hello" for m in fake.sent(ALICE.id)))
    assert not fake.sent(BOB.id)
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["hello"]
