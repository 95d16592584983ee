"""`HttpApp.add_webhook`: a platform's deliveries are authenticated before anything parses
them, and a body that cannot be read is a 400, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from bridge.http import HttpApp, header_matches

SECRET = SecretStr("s3cret")


class Deliveries:
    def __init__(self) -> None:
        self.parsed: list[bytes] = []
        self.handled: list[dict[str, object]] = []

    def parse(self, request: Request, body: bytes) -> dict[str, object] | None:
        self.parsed.append(body)
        data = json.loads(body)
        return data if isinstance(data, dict) else None

    async def handle(self, request: Request, delivery: dict[str, object]) -> Response:
        self.handled.append(delivery)
        return Response(status_code=204)


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, Deliveries]]:
    deliveries = Deliveries()
    app = HttpApp()
    app.add_webhook(
        "/hook",
        deliveries.handle,
        verify=lambda request, body: header_matches(request, "x-secret", SECRET),
        parse=deliveries.parse,
        refused=403,
        max_body=100_000,
    )
    async with anyio.create_task_group() as group:
        port = await group.start(app.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client, deliveries
        group.cancel_scope.cancel()


async def test_a_delivery_without_the_secret_is_refused_before_it_is_parsed(
    served: tuple[httpx.AsyncClient, Deliveries],
) -> None:
    client, deliveries = served
    missing = await client.post("/hook", content=b'{"a": 1}')
    wrong = await client.post("/hook", content=b'{"a": 1}', headers={"x-secret": "guess"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert deliveries.parsed == [] and deliveries.handled == []


async def test_unreadable_deliveries_are_400_and_a_good_one_is_handled(
    served: tuple[httpx.AsyncClient, Deliveries],
) -> None:
    client, deliveries = served
    signed = {"x-secret": "s3cret"}
    bodies = [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 20_000 + b"]" * 20_000, b'{"a": 1}']
    codes = [(await client.post("/hook", content=b, headers=signed)).status_code for b in bodies]
    assert codes == [400, 400, 400, 400, 204]
    assert deliveries.handled == [{"a": 1}]
    too_large = await client.post("/hook", content=b" " * 200_000, headers=signed)
    assert too_large.status_code == 413
