"""The bridge's A2A adapter: every exposed agent as an Agent2Agent agent."""

import os

# The SDK wraps every internal call in an OpenTelemetry span (over a hundred per message),
# which doubles the cost of a round trip; the bridge traces turns itself. Chosen at the
# SDK's import, so set before it: an explicit `OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=true`
# in the environment still turns the SDK's spans on.
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

from bridge_a2a.adapter import A2AAdapter

__all__ = ["A2AAdapter"]
