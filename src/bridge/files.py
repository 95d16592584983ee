"""Files the bridge re-hosts at `/files/…`: sealed references, streamed on request.

Chat platforms' file URLs need the bot's token. An adapter publishes a reference to the
platform's file (never its bytes); the URL seals it (AES-GCM, the replicas' shared secret)
with an expiry, a size cap and who shared it. Whichever replica gets the request opens it
and streams the file from the platform through that adapter's fetcher, under the cap.
`fetch_url` is the one safe way to download: allowed hosts only, no redirect off them, no
private, loopback or link-local address, and never a partial file.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import anyio
import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from bridge.config import FilesConfig
from bridge.errors import FileRefusedError
from bridge.stores import SessionStore

__all__ = ["FileBody", "FileFetcher", "FileHost", "fetch_url"]

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{24,8192}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]{0,63}/[A-Za-z0-9][\w.+-]{0,127}", re.ASCII)
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_UPLOADS = "upload"
#: `/files/` answers are downloads, never pages: no script, no sniffing, no framing.
_SAFE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class FileBody:
    """An open download: its declared size (if the platform gave one) and its bytes."""

    size: int | None
    chunks: AsyncIterator[bytes]


#: `fetcher(locator, limit)`: open the platform file `locator`, refusing it over `limit` bytes.
FileFetcher = Callable[[str, int], AbstractAsyncContextManager[FileBody]]


@dataclass(frozen=True, slots=True)
class _Ref:
    source: str
    locator: str
    filename: str
    content_type: str
    limit: int
    owner: str
    expires_at: float


class _Sealer:
    """AES-GCM over the reference: any replica with the same secret opens it; nobody else
    reads the platform's URL or forges one."""

    def __init__(self, secret: SecretStr | None) -> None:
        raw = secret.get_secret_value().encode() if secret else os.urandom(32)
        self._aead = AESGCM(hashlib.sha256(b"bridge-files:" + raw).digest())

    def seal(self, ref: _Ref) -> str:
        claims = [ref.source, ref.locator, ref.filename, ref.content_type]
        claims += [str(ref.limit), ref.owner, str(int(ref.expires_at))]
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(claims).encode(), b"file")
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> _Ref | None:
        """The reference, or None for anything forged, malformed or expired."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._aead.decrypt(raw[:12], raw[12:], b"file")
            source, locator, name, kind, limit, owner, expires = json.loads(plain)
            ref = _Ref(
                str(source),
                str(locator),
                str(name),
                str(kind),
                int(limit),
                str(owner),
                float(expires),
            )
        except (ValueError, TypeError, InvalidTag):
            return None
        return ref if ref.expires_at >= time.time() else None


class _Streams:
    """Files being streamed, in total and per user who shared them: each holds one chunk
    in memory, so these caps bound the memory all downloads use."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total, self.per_user = total, per_user
        self.active: dict[str, int] = {}

    def take(self, owner: str) -> bool:
        if sum(self.active.values()) >= self.total or self.active.get(owner, 0) >= self.per_user:
            return False
        self.active[owner] = self.active.get(owner, 0) + 1
        return True

    def give(self, owner: str) -> None:
        left = self.active.pop(owner) - 1
        if left:
            self.active[owner] = left


class FileHost:
    """Publishes sealed `/files/` URLs and streams them from the platform on request."""

    def __init__(self, config: FilesConfig | None = None, *, secret: SecretStr | None = None):
        self.config = config or FilesConfig()
        self.base_url = ""
        self._sealer = _Sealer(secret)
        self._sources: dict[str, FileFetcher] = {}
        self._store: SessionStore | None = None
        self._streams = _Streams(self.config.max_streams, self.config.max_streams_per_user)

    def add_source(self, source: str, fetcher: FileFetcher) -> None:
        """Let this replica serve files of `source` (an adapter, on start)."""
        self._sources[source] = fetcher

    def keep_uploads_in(self, store: SessionStore) -> None:
        """Serve files whose bytes a caller sent inline (no platform holds them) from
        `store`, where every replica finds them until the link expires."""

        @asynccontextmanager
        async def fetch(locator: str, limit: int) -> AsyncIterator[FileBody]:
            raw = await store.get_record(locator)
            if raw is None:
                raise FileRefusedError("unavailable", "the upload expired")
            data = base64.b64decode(raw)
            if len(data) > limit:
                raise FileRefusedError("too_large", "the upload is over the cap")

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(data), _CHUNK):
                    yield data[start : start + _CHUNK]

            yield FileBody(len(data), chunks())

        self._store = store
        self.add_source(_UPLOADS, fetch)

    async def publish_upload(
        self, data: bytes, *, filename: str, content_type: str, limit: int, owner: str = ""
    ) -> str:
        """A URL for bytes a caller sent inline, kept in the store for the link's lifetime.

        Raises:
            ValueError: over `limit` bytes, or no store to keep uploads in.
        """
        if len(data) > limit:
            raise ValueError(f"{len(data)} bytes is over the {limit}-byte cap")
        if self._store is None:
            raise ValueError("this bridge keeps no uploads")
        locator = f"upload:{uuid.uuid4().hex}"
        encoded = base64.b64encode(data).decode("ascii")
        await self._store.put_record(locator, encoded, self.config.ttl)
        return self.publish(
            _UPLOADS,
            locator,
            filename=filename,
            content_type=content_type,
            limit=limit,
            owner=owner,
        )

    def publish(
        self,
        source: str,
        locator: str,
        *,
        filename: str,
        content_type: str = "application/octet-stream",
        limit: int,
        owner: str = "",
    ) -> str:
        """A signed, expiring URL for the platform file `locator` of `source`; no bytes move."""
        expires = time.time() + self.config.ttl
        ref = _Ref(source, locator, filename, content_type, limit, owner, expires)
        return f"{self.base_url}/files/{self._sealer.seal(ref)}"

    async def endpoint(self, request: Request) -> Response:
        """`GET /files/{token}`: 403 for any bad or expired token, 404 when this replica does
        not serve the source, 413 over the cap, 503 over the stream caps, 502 when the
        platform fails; else the file, streamed."""
        ref = self._sealer.open(request.path_params.get("token", ""))
        if ref is None:
            return PlainTextResponse("link invalid or expired", 403, _SAFE_HEADERS)
        fetcher = self._sources.get(ref.source)
        if fetcher is None:
            return PlainTextResponse("not served by this replica", 404, _SAFE_HEADERS)
        if not self._streams.take(ref.owner):
            return PlainTextResponse(
                "too many downloads; retry", 503, {**_SAFE_HEADERS, "retry-after": "5"}
            )
        stack = AsyncExitStack()
        stack.callback(self._streams.give, ref.owner)
        async with stack:
            try:
                body = await stack.enter_async_context(fetcher(ref.locator, ref.limit))
            except FileRefusedError as exc:
                logger.warning("file %s of %s not served: %s", ref.filename, ref.source, exc)
                status = 413 if exc.reason == "too_large" else 502
                return PlainTextResponse(
                    f"file not available ({exc.reason})", status, _SAFE_HEADERS
                )
            return _Stream(ref, body, stack.pop_all(), self.config.stream_timeout)


def _disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback name plus `filename*` in UTF-8 for every other name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quote(filename, safe='')}"


class _Stream(Response):
    """The file's bytes as they arrive. Past the cap, or short of the declared size, the
    response is left incomplete (the connection closes), so no client takes a part for
    the whole file."""

    def __init__(self, ref: _Ref, body: FileBody, stack: AsyncExitStack, timeout: float) -> None:
        # Not Response.__init__: it would declare `content-length: 0` for the missing body.
        self.ref, self.file, self.stack, self.timeout = ref, body, stack, timeout
        self.status_code = 200
        self.background = None
        headers = {
            **_SAFE_HEADERS,
            "content-disposition": _disposition(ref.filename),
            "content-type": ref.content_type
            if _MEDIA_TYPE.fullmatch(ref.content_type)
            else "application/octet-stream",
        }
        if body.size is not None:
            headers["content-length"] = str(body.size)
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.stack:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            sent = 0
            try:
                with anyio.fail_after(self.timeout):
                    async for chunk in self.file.chunks:
                        sent += len(chunk)
                        if sent > self.ref.limit:
                            raise FileRefusedError("too_large", f"over {self.ref.limit} bytes")
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (FileRefusedError, TimeoutError) as exc:
                logger.warning("file %s cut off: %r", self.ref.filename, exc)
                return
            if self.file.size is not None and sent != self.file.size:
                logger.warning(
                    "file %s ended at %d of %d bytes", self.ref.filename, sent, self.file.size
                )
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})


# -- the one safe download --------------------------------------------------------------


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _pinned(url: str, hosts: Collection[str], allow_private: bool) -> tuple[str, str]:
    """`url` checked (scheme, allowed host) and pinned to an address that was checked too,
    so a second DNS answer cannot point the request elsewhere. Returns (url, host)."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:  # a bad port or bracketed address
        raise FileRefusedError("host", "not a valid URL") from None
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise FileRefusedError("host", f"not an https URL: {parts.scheme or '?'}://")
    if host not in {h.lower() for h in hosts}:
        raise FileRefusedError("host", f"{host or '?'} is not an allowed file host")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FileRefusedError("unavailable", f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses or not (allow_private or all(_is_public(a) for a in addresses)):
        raise FileRefusedError("address", f"{host} resolves to a non-public address")
    ip = addresses[0]
    netloc = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), host


@asynccontextmanager
async def fetch_url(
    url: str,
    *,
    hosts: Collection[str],
    limit: int,
    headers: dict[str, str] | None = None,
    allow_private: bool = False,
    read_timeout: float = 60.0,
) -> AsyncIterator[FileBody]:
    """GET `url` (with `headers`, e.g. the bot token) only from `hosts`, following at most
    three redirects that stay on them.

    Raises:
        FileRefusedError: host, address, redirect, too_large (declared over `limit`),
            unavailable (an error status, Slack's sign-in page, a transport failure).
    """
    async with httpx.AsyncClient(timeout=read_timeout, trust_env=False) as client:
        response = await _follow(client, url, hosts, headers or {}, allow_private)
        try:
            declared = response.headers.get("content-length")
            size = int(declared) if declared and declared.isdigit() else None
            if size is not None and size > limit:
                raise FileRefusedError("too_large", f"{size} bytes, over {limit}")
            yield FileBody(size, _chunks(response))
        finally:
            await response.aclose()


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    hosts: Collection[str],
    headers: dict[str, str],
    allow_private: bool,
) -> httpx.Response:
    for hop in range(_MAX_REDIRECTS + 1):
        try:
            pinned, host = await _pinned(url, hosts, allow_private)
        except FileRefusedError as exc:
            if hop and exc.reason == "host":
                raise FileRefusedError(
                    "redirect", f"redirected off the file hosts: {exc}"
                ) from None
            raise
        request = client.build_request(
            "GET",
            pinned,
            headers={**headers, "host": _host_header(url), "accept-encoding": "identity"},
            extensions={"sni_hostname": host},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise FileRefusedError("unavailable", f"download failed: {exc!r}") from None
        if response.is_redirect:
            await response.aclose()
            url = urljoin(url, response.headers.get("location", ""))
            continue
        if response.status_code != 200 or response.headers.get("content-type", "").startswith(
            "text/html"
        ):
            await response.aclose()
            raise FileRefusedError("unavailable", f"the file host answered {response.status_code}")
        return response
    raise FileRefusedError("redirect", f"more than {_MAX_REDIRECTS} redirects")


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1]


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw(_CHUNK):
            yield chunk
    except httpx.HTTPError as exc:
        raise FileRefusedError("unavailable", f"download broke off: {exc!r}") from None
