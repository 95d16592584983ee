"""Attacks through shared files, over real sockets: the bot token sent off Slack's file hosts,
redirects, loopback and private addresses, truncated or oversize downloads, hostile names
and link tokens, download floods; and re-hosted files served by any replica."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from bridge_slack.testing import FakeSlack, event_callback
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.emulator import Emulator
from tests.security._hosts import hostile_host
from tests.security.conftest import Edge, serving
from tests.telegram.conftest import running_bridge

_ts = itertools.count(1)


def _file(url: str, name: str = "report.txt", size: int = 10) -> dict[str, Any]:
    return {"id": "F1", "name": name, "mimetype": "text/plain", "size": size, "url_private": url}


async def _share(
    edge: Edge, emulator: Emulator, *files: dict[str, Any], user: str = "U1"
) -> list[str]:
    """A DM with `files`, answered; returns the file URLs the agent was given."""
    ts = f"1700000100.{next(_ts):06d}"
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "D1",
        "channel_type": "im",
        "user": user,
        "text": "look at this",
        "ts": ts,
        "files": list(files),
    }
    before = len(emulator.invokes())
    response = await edge.events.event(event_callback(event))
    assert response.status_code == 200
    with anyio.fail_after(10):
        await edge.slack.wait_for(
            lambda: (
                any(not m.streaming for m in edge.slack.replies("D1", ts))
                and len(emulator.invokes()) > before
            )
        )
    return list(emulator.invokes()[-1].json["input"]["files"])


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url)


async def test_the_bot_token_never_goes_to_a_host_off_the_file_host_list(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    async with (
        hostile_host("127.0.0.2") as thief,
        serving(emulator, slack, telegram) as edge,
    ):
        urls = await _share(
            edge,
            emulator,
            _file(thief.url("/steal")),
            _file(f"http://127.0.0.1@127.0.0.2:{thief.port}/steal"),
            _file(f"http://[::ffff:127.0.0.2]:{thief.port}/steal"),
            _file("http://[::1/steal"),
            _file("http://127.0.0.1:99999/steal"),  # an allowed host, a port that cannot be
        )
        with anyio.fail_after(10):
            await slack.wait_for(lambda: len(slack.ephemerals) >= 4)
        refused = await _get(urls[0])
    assert len(urls) == 1 and refused.status_code == 502
    assert thief.connections == 0
    assert len(slack.ephemerals) == 4
    assert all("could not be read" in e["text"] for e in slack.ephemerals)


async def test_a_redirect_off_the_file_hosts_is_not_followed(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    async with (
        hostile_host("127.0.0.2") as thief,
        hostile_host("127.0.0.1") as redirector,
        serving(emulator, slack, telegram) as edge,
    ):
        away = quote(thief.url("/steal"), safe="")
        [url] = await _share(edge, emulator, _file(redirector.url(f"/redirect?to={away}")))
        answer = await _get(url)
    assert answer.status_code == 502
    assert thief.connections == 0
    assert f"authorization: bearer {slack.bot_token}" in redirector.heads[0].lower()


async def test_loopback_and_private_addresses_are_refused_after_resolving_the_host(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    strict = {"file_hosts": ["localhost", "127.0.0.1"], "allow_private_file_hosts": False}
    async with (
        hostile_host("127.0.0.1") as local,
        serving(emulator, slack, telegram, slack_options=strict) as edge,
    ):
        urls = await _share(
            edge,
            emulator,
            _file(f"https://localhost:{local.port}/x"),
            _file(f"https://localhost:{edge.port}/metrics"),
            _file(f"https://127.0.0.1:{edge.port}/metrics"),
            _file(f"http://127.0.0.1:{edge.port}/metrics"),
        )
        answers = [await _get(url) for url in urls]
    assert len(urls) == 4
    assert [a.status_code for a in answers] == [502] * 4
    assert not any(b"bridge_" in a.content for a in answers)
    assert local.connections == 0


@pytest.mark.parametrize("size", [200_000, 1_000_000, 8_000_000])
async def test_downloads_arrive_whole(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, size: int
) -> None:
    data = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    async with serving(emulator, slack, telegram) as edge:
        [url] = await _share(
            edge, emulator, slack.add_file(data, "big.bin", "application/octet-stream")
        )
        assert slack.file_downloads == []  # a reference: nothing fetched, nothing held
        answer = await _get(url)
    assert answer.status_code == 200
    assert answer.content == data
    assert slack.file_downloads == [f"Bearer {slack.bot_token}"]


async def test_files_over_the_cap_are_refused_never_cut_short(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    cap = {"max_file_bytes": 100_000}
    async with (
        hostile_host("127.0.0.1") as host,
        serving(emulator, slack, telegram, slack_options=cap) as edge,
    ):
        declared = slack.add_file(b"x" * 150_000, "declared.bin")
        lying = slack.add_file(b"y" * 150_000, "lying.bin") | {"size": 10}
        chunked = _file(host.url("/chunked?size=300000"), "chunked.bin")
        urls = await _share(edge, emulator, declared, lying, chunked)
        with anyio.fail_after(10):
            await slack.wait_for(lambda: slack.ephemerals)
        lying_answer = await _get(urls[0])
        with pytest.raises(httpx.RemoteProtocolError):
            await _get(urls[1])  # headers were sent: the body is left incomplete, never "done"
    assert len(urls) == 2
    assert "too large" in slack.ephemerals[0]["text"]
    assert lying_answer.status_code == 413


async def test_file_responses_are_downloads_with_rfc_6266_names_and_no_sniffing(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    name = 'отчёт "Q3" 📊.svg'
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    async with serving(emulator, slack, telegram) as edge:
        [url] = await _share(edge, emulator, slack.add_file(svg, name, "image/svg+xml"))
        answer = await _get(url)
    assert answer.status_code == 200 and answer.content == svg
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert disposition.isascii()
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_every_bad_link_encoding_is_a_4xx(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    async with serving(emulator, slack, telegram) as edge:
        [url] = await _share(edge, emulator, slack.add_file(b"data", "a.txt"))
        token = url.rsplit("/", 1)[1]
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        paths = [
            f"/files/{token[:-1]}",
            f"/files/{flipped}",
            f"/files/{token}==",
            f"/files/{'A' * 40}",
            "/files/x",
            "/files/%ff%fe",
            "/files/%C3%28",
            f"/files/{token}%00",
            f"/files/{'A' * 9000}",
            "/files/abc?expires=1&sig=%ff%fe",
            "/files/abc?expires=%ff&sig=\xff",
        ]
        statuses = []
        async with httpx.AsyncClient() as http:
            for path in paths:
                statuses.append((await http.get(f"{edge.url}{path}")).status_code)
            good = await http.get(url + "?expires=1&sig=%ff")
    assert all(400 <= status < 500 for status in statuses), statuses
    assert good.status_code == 200  # extra query parameters change nothing


async def test_downloads_are_capped_per_user_and_in_total(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    caps = {"max_streams": 2, "max_streams_per_user": 1}
    async with (
        hostile_host("127.0.0.1") as host,
        serving(emulator, slack, telegram, files=caps) as edge,
        httpx.AsyncClient(timeout=10) as http,
    ):

        def url(owner: str) -> str:
            slow = host.url("/slow?size=100000")
            return edge.runtime.files.publish("slack", slow, filename="s", limit=10**6, owner=owner)

        alice_1, alice_2, bob_1, carol_1 = url("alice"), url("alice"), url("bob"), url("carol")
        async with http.stream("GET", alice_1) as first:
            assert first.status_code == 200
            second = await http.get(alice_2)
            async with http.stream("GET", bob_1) as bobs:
                assert bobs.status_code == 200
                carols = await http.get(carol_1)
                host.release.set()
                assert len(await bobs.aread()) == 100_000
            assert len(await first.aread()) == 100_000
        again = await http.get(alice_2)
    assert (second.status_code, carols.status_code) == (503, 503)
    assert again.status_code == 200 and len(again.content) == 100_000


async def test_a_file_shared_on_one_replica_is_served_by_another(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    shared = {"handle_secret": "handle-secret-77aa01"}
    async with (
        serving(emulator, slack, telegram, conversations=shared) as one,
        serving(emulator, slack, telegram, conversations=shared) as two,
        serving(emulator, slack, telegram) as stranger,
    ):
        [url] = await _share(one, emulator, slack.add_file(b"quarterly numbers", "q.txt"))
        on_two = await _get(url.replace(one.url, two.url))
        on_stranger = await _get(url.replace(one.url, stranger.url))
    assert on_two.status_code == 200 and on_two.content == b"quarterly numbers"
    assert on_stranger.status_code == 403
    assert json.dumps([r.json for r in emulator.requests]).count(slack.bot_token) == 0


async def test_a_file_host_that_stalls_is_cut_off_and_frees_its_slot(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    files = {"stream_timeout": 0.5, "max_streams_per_user": 1}
    async with (
        hostile_host("127.0.0.1") as host,
        serving(emulator, slack, telegram, files=files) as edge,
    ):
        publish = edge.runtime.files.publish
        stalled = publish("slack", host.url("/slow"), filename="s", limit=10**6, owner="eve")
        with pytest.raises(httpx.RemoteProtocolError):
            await _get(stalled)  # headers, one chunk, then nothing: cut off, never "complete"
        host.release.set()
        later = await _get(
            publish("slack", host.url("/chunked?size=5"), filename="t", limit=9, owner="eve")
        )
    assert later.status_code == 200 and later.content == b"zzzzz"


async def test_telegram_files_arrive_whole_and_over_the_cap_are_refused(
    emulator: Emulator,
) -> None:
    user = FakeUser(5151, "Fay")
    big = bytes(range(256)) * 4000  # 1,024,000 bytes
    async with open_fake_bot_api() as fake, running_bridge(emulator, fake) as (runtime, _):
        fake.queue(user.says(fake, user.id, "read this", document=("big.bin", big)))
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any(m.text == "read this" for m in fake.sent(user.id)))
        [url] = emulator.invokes()[-1].json["input"]["files"]
        whole = await _get(url)
        [file_id] = [key for key, (_, data) in fake.files.items() if data == big]
        capped = runtime.files.publish("telegram", file_id, filename="b", limit=1000)
        refused = await _get(capped)
    assert whole.status_code == 200 and whole.content == big
    assert refused.status_code == 413
    assert fake.token not in url
