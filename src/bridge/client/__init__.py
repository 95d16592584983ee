"""The upstream platform client: HTTP, SSE and wire JSON live behind this package."""

from bridge.client._checks import Checkpoint
from bridge.client._client import AgentClient
from bridge.client._run import Run
from bridge.client._sse import ServerSentEvent, SSEDecoder

__all__ = ["AgentClient", "Checkpoint", "Run", "SSEDecoder", "ServerSentEvent"]
