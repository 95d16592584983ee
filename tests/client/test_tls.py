"""The client verifies a platform served over TLS (a plain-`http://` platform costs no CA
bundle, but an `https://` one gets httpx's full verification): an untrusted certificate is
refused before any request is sent."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge import errors
from bridge.client import AgentClient
from bridge.config import UpstreamConfig

pytestmark = pytest.mark.anyio


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no authority signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert, private = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, private)
    return context


async def test_a_platform_over_tls_with_an_untrusted_certificate_is_refused(
    tmp_path: Path,
) -> None:
    received: list[bytes] = []

    async def handle(stream: anyio.abc.ByteStream) -> None:
        # Reached only after a completed handshake, which the client must refuse.
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                received.append(await stream.receive())

    listener = TLSListener(
        await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0),
        _self_signed(tmp_path),
        standard_compatible=False,
    )
    port = listener.listener.extra(anyio.abc.SocketAttribute.local_port)
    config = UpstreamConfig(base_url=f"https://127.0.0.1:{port}", api_key="k", max_attempts=1)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        with anyio.fail_after(10), pytest.raises(errors.TransportError):
            async with AgentClient(config) as client:
                await client.list_agents()
        group.cancel_scope.cancel()
    assert received == []
