"""A hostile file host on a loopback address: records every connection and request head, and
answers by path: `/redirect?to=URL` (302), `/chunked?size=N` (no Content-Length),
`/slow` (headers and one chunk, then the rest when released), anything else 200 "stolen"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc


@dataclass
class HostileHost:
    host: str
    port: int = 0
    heads: list[str] = field(default_factory=list)
    connections: int = 0
    release: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                try:
                    head += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
            text = head.decode("latin-1")
            self.heads.append(text)
            target = text.split(" ", 2)[1] if text.count(" ") >= 2 else "/"
            try:
                await self._answer(stream, urlsplit(target))
            except (anyio.BrokenResourceError, ConnectionResetError):
                return

    async def _answer(self, stream: anyio.abc.SocketStream, target: object) -> None:
        path, query = target.path, parse_qs(target.query)  # type: ignore[attr-defined]
        if path == "/redirect":
            location = query["to"][0]
            await stream.send(
                f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
            )
        elif path in ("/chunked", "/slow"):
            size = int(query.get("size", ["300000"])[0])
            await stream.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            step = 16 * 1024
            for offset in range(0, size, step):
                piece = b"z" * min(step, size - offset)
                await stream.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                if path == "/slow" and offset == 0:
                    await self.release.wait()
            await stream.send(b"0\r\n\r\n")
        else:
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen")


@asynccontextmanager
async def hostile_host(host: str = "127.0.0.1") -> AsyncIterator[HostileHost]:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    found = HostileHost(host, listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, found._serve)
        try:
            yield found
        finally:
            found.release.set()
            group.cancel_scope.cancel()
