"""Short-lived signed URLs for files the bridge re-hosts (`/files/…`).

Chat platforms' file URLs carry tokens (Slack needs the bot token, Telegram's URL
contains it). The adapter downloads the file and publishes it here; only this
bridge URL, signed and expiring, is passed upstream.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["FileHost"]


@dataclass(frozen=True, slots=True)
class _File:
    data: bytes
    filename: str
    content_type: str
    expires_at: float


class FileHost:
    """Holds published files in memory until they expire.

    Process-local: behind a load balancer, route `/files/` to the replica that
    published (sticky on the path) or keep one replica serving adapters with files.
    """

    def __init__(self, *, ttl: float = 900.0, max_bytes: int = 20 * 1024 * 1024) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.base_url = ""
        self._secret = secrets.token_bytes(32)
        self._files: dict[str, _File] = {}

    def _sign(self, file_id: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{file_id}.{expires}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def publish(
        self, data: bytes, filename: str, content_type: str = "application/octet-stream"
    ) -> str:
        """Store `data` and return its signed URL.

        Raises:
            ValueError: the file is larger than `max_bytes`.
        """
        if len(data) > self.max_bytes:
            raise ValueError(f"file larger than {self.max_bytes} bytes")
        self._expire()
        file_id = secrets.token_urlsafe(16)
        expires = int(time.time() + self.ttl)
        self._files[file_id] = _File(data, filename, content_type, expires)
        signature = self._sign(file_id, expires)
        return f"{self.base_url}/files/{file_id}?expires={expires}&sig={signature}"

    def _expire(self) -> None:
        now = time.time()
        for file_id in [k for k, f in self._files.items() if f.expires_at < now]:
            del self._files[file_id]

    async def endpoint(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            return Response("bad link", status_code=403)
        signature = request.query_params.get("sig", "")
        if (
            not hmac.compare_digest(signature, self._sign(file_id, expires))
            or expires < time.time()
        ):
            return Response("link invalid or expired", status_code=403)
        found = self._files.get(file_id)
        if found is None:
            return Response("not found", status_code=404)
        disposition = f'attachment; filename="{found.filename.replace(chr(34), "")}"'
        return Response(
            found.data, media_type=found.content_type, headers={"content-disposition": disposition}
        )
