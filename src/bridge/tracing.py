"""Optional OpenTelemetry tracing: one span per turn, from the platform event to the final
post, carrying the task id. Install the `otel` extra (`opentelemetry-api`) and configure an
SDK exporter in the process; without them this module does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:  # an extra: the core runs without it
    from opentelemetry import trace
except ImportError:  # pragma: no cover - exercised only where the extra is absent
    trace = None  # type: ignore[assignment]

__all__ = ["set_turn_attribute", "turn_span"]

_TRACER_NAME = "bridge"


@contextmanager
def turn_span(*, key: str, agent: str, source: str) -> Iterator[None]:
    """The span of one turn; exceptions are recorded on it and re-raised."""
    if trace is None:
        yield
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    attributes = {"bridge.conversation_key": key, "bridge.agent_id": agent, "bridge.source": source}
    with tracer.start_as_current_span("bridge.turn", attributes=attributes):
        yield


def set_turn_attribute(name: str, value: Any) -> None:
    """Set an attribute on the current turn's span (e.g. the task id once known)."""
    if trace is not None:
        trace.get_current_span().set_attribute(name, value)
