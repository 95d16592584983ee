"""Prometheus metrics of one bridge process, served at `/metrics`.

One registry per runtime (not the global one), so tests and several runtimes in one
process do not collide. Counters are fed by the conversations service, the client's
errors and the output scheduler's own counters (read at scrape time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from bridge.scheduler import OutputScheduler, SchedulerStats

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The bridge's metrics; every method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.turns_started = Counter(
            "bridge_turns_started", "Turns started", ["source", "agent"], registry=registry
        )
        self.turns_finished = Counter(
            "bridge_turns_finished",
            "Turns finished, by final status",
            ["source", "agent", "status"],
            registry=registry,
        )
        self.first_text = Histogram(
            "bridge_first_text_seconds",
            "Time from a message to its first visible text",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.turn_duration = Histogram(
            "bridge_turn_duration_seconds",
            "Time from a message to its delivered answer",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "bridge_upstream_errors", "Upstream errors, by kind", ["kind"], registry=registry
        )
        self.queued = Gauge(
            "bridge_queued_messages", "Messages waiting for their turn", registry=registry
        )
        self.inflight = Gauge(
            "bridge_inflight_turns", "Turns running in this process", registry=registry
        )
        self.recovered = Counter(
            "bridge_recovered_turns",
            "Turns finished by recovery after a crash",
            ["adapter"],
            registry=registry,
        )
        self.turn_failures = Counter(
            "bridge_turn_failures",
            "Turns whose answer could not be rendered or delivered, contained to the turn",
            ["adapter", "stage"],
            registry=registry,
        )
        self.quarantined = Counter(
            "bridge_quarantined_turns",
            "Recorded turns set aside after failing delivery max_delivery_attempts times",
            ["adapter"],
            registry=registry,
        )
        self.platform_calls = Counter(
            "bridge_platform_calls",
            "Platform API calls made outside the output scheduler",
            ["platform", "method"],
            registry=registry,
        )

    def watch_scheduler(self, scheduler: OutputScheduler) -> None:
        """Export the scheduler's counters (platform calls, 429s, waits) at scrape time."""
        self.registry.register(_SchedulerCollector(lambda: scheduler.stats))

    def upstream_error(self, error: BaseException) -> None:
        self.upstream_errors.labels(kind=type(error).__name__).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        return Response(self.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


class _SchedulerCollector(Collector):
    def __init__(self, stats: Callable[[], SchedulerStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        calls = CounterMetricFamily(
            "bridge_scheduled_platform_calls",
            "Platform calls made through the output scheduler",
            labels=["platform"],
        )
        by_platform: dict[str, int] = {}
        for destination, count in stats.calls.items():
            platform = destination.split(":", 1)[0]
            by_platform[platform] = by_platform.get(platform, 0) + count
        for platform, count in sorted(by_platform.items()):
            calls.add_metric([platform], count)
        yield calls
        yield CounterMetricFamily(
            "bridge_platform_rate_limited",
            "Platform calls answered with a rate limit",
            value=stats.rate_limited,
        )
        yield CounterMetricFamily(
            "bridge_platform_retry_wait_seconds",
            "Seconds of retry_after pauses the platforms asked for",
            value=stats.rate_limited_seconds,
        )
        yield CounterMetricFamily(
            "bridge_output_skipped", "Edits skipped as no-ops", value=stats.skipped
        )
        yield CounterMetricFamily(
            "bridge_output_coalesced", "Edits superseded by newer ones", value=stats.coalesced
        )
        yield GaugeMetricFamily(
            "bridge_output_pending", "Platform calls queued right now", value=stats.pending
        )
