"""Fault injection: what can go wrong on a request, how a test asks for it, and matching.

A fault is chosen per request, either from the `x-emulator-fault` header of that request
or from the queue filled by `Emulator.inject(Fault(...))`. Header syntax (`;`-separated):

    status=503;retry-after=1     answer 503 (any 4xx/5xx), optional Retry-After
    status=429                   answer 429; Retry-After defaults to 1
    drop-after=3                 send 3 SSE events, then cut the connection
    stall-after=2;stall-for=1.5  send 2 events, then go silent (no keep-alives), then cut
    garbage-after=1              send 1 event, then a malformed line, then carry on
    reset                        reset the connection before any response (nothing runs)
    status=500;create            run the request (a turn is created), then answer 500
    reset;create                 run the request (a turn is created), then reset the connection
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["STREAM_KINDS", "Fault", "FaultQueue", "FaultSyntaxError", "format_seconds"]

FaultKind = Literal["status", "drop", "stall", "garbage", "reset"]
#: Kinds that act on the event stream; unless a `path` is given they match stream requests only.
STREAM_KINDS = frozenset({"drop", "stall", "garbage"})
_DEFAULT_DETAILS = {429: "Rate limit exceeded", 500: "Internal server error"}
_KINDS_BY_KEY: dict[str, FaultKind] = {
    "drop-after": "drop",
    "stall-after": "stall",
    "garbage-after": "garbage",
}


class FaultSyntaxError(ValueError):
    """An `x-emulator-fault` header or a fault description could not be understood."""


@dataclass
class Fault:
    """One injected fault.

    Attributes:
        kind: `status` (answer `status`; unless `create`, without running anything: no
            task is created), `reset` (close the connection before any response; unless
            `create`, without running anything),
            `drop` (cut the connection after `after` events), `stall` (after `after`
            events keep the connection open and silent for `seconds`, or until the
            emulator stops when `None`, then cut it), `garbage` (after `after` events
            write `garbage` into the stream, then carry on). A dropped or stalled turn
            keeps running server-side to completion. On non-stream endpoints `drop` and
            `stall` lose the response (the request is still processed) and `garbage`
            replaces the response body.
        status: HTTP status for `status` faults.
        create: for `status` and `reset`: run the request first (an invoke creates its
            turn, which keeps running), then fail the response. The failure comes once the
            turn exists (or the route refused the request).
        retry_after: seconds for a `Retry-After` header (429 always gets one, default 1).
        detail: the error body's `detail`; a default text when `None`.
        path: substring the request path must contain. `None` means any `/v1/` path for
            `status` faults and `/invoke/stream` for the stream kinds.
        method, agent, thread: optional further matches (agent by id or name; thread by
            the body's `id` or the path's task id).
        times: how many matching requests consume this fault.
    """

    kind: FaultKind
    status: int = 503
    create: bool = False
    retry_after: float | None = None
    after: int = 0
    seconds: float | None = None
    detail: Any = None
    garbage: str = "data: {this is not json\n\n"
    path: str | None = None
    method: str | None = None
    agent: str | None = None
    thread: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("status", "drop", "stall", "garbage", "reset"):
            raise FaultSyntaxError(f"unknown fault kind {self.kind!r}")
        if not 400 <= self.status <= 599:
            raise FaultSyntaxError(f"fault status must be 4xx or 5xx, not {self.status}")
        if self.after < 0 or self.times < 1:
            raise FaultSyntaxError("fault `after` must be >= 0 and `times` >= 1")
        if self.kind == "status" and self.status == 429 and self.retry_after is None:
            self.retry_after = 1

    @classmethod
    def parse(cls, header: str) -> Fault:
        """Build a fault from the `x-emulator-fault` header syntax (module docstring).

        Raises:
            FaultSyntaxError: unknown key, bad number, or not exactly one kind.
        """
        fields: dict[str, Any] = {}
        kinds: list[FaultKind] = []
        for part in header.replace(",", ";").split(";"):
            key, _, value = part.strip().partition("=")
            key = key.strip().lower()
            value = value.strip()
            if not key:
                continue
            try:
                if key == "status":
                    kinds.append("status")
                    fields["status"] = int(value)
                elif key in _KINDS_BY_KEY:
                    kinds.append(_KINDS_BY_KEY[key])
                    fields["after"] = int(value or 0)
                elif key in ("drop", "stall", "garbage"):
                    kinds.append(_KINDS_BY_KEY[f"{key}-after"])
                elif key == "reset":
                    kinds.append("reset")
                elif key == "create":
                    fields["create"] = value.lower() not in ("0", "false", "no")
                elif key == "retry-after":
                    fields["retry_after"] = float(value)
                elif key == "stall-for":
                    fields["seconds"] = float(value)
                elif key == "detail":
                    fields["detail"] = value
                else:
                    raise FaultSyntaxError(f"unknown fault key {key!r} in {header!r}")
            except ValueError as exc:
                if isinstance(exc, FaultSyntaxError):
                    raise
                raise FaultSyntaxError(f"bad value for {key!r} in {header!r}") from None
        if len(kinds) != 1:
            raise FaultSyntaxError(f"expected exactly one fault kind in {header!r}")
        # Header faults apply to the request that carries them, wherever it goes.
        return cls(kinds[0], path="", **fields)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from its JSON form (the control API body).

        Raises:
            FaultSyntaxError: unknown field or bad value.
        """
        try:
            return cls(**data)
        except TypeError as exc:
            raise FaultSyntaxError(str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The fault in header syntax, as recorded on the request it hit."""
        create = ";create" if self.create else ""
        if self.kind == "reset":
            return f"reset{create}"
        if self.kind == "status":
            text = f"status={self.status}{create}"
            if self.retry_after is not None:
                text += f";retry-after={format_seconds(self.retry_after)}"
            return text
        text = f"{self.kind}-after={self.after}"
        if self.kind == "stall" and self.seconds is not None:
            text += f";stall-for={format_seconds(self.seconds)}"
        return text

    @property
    def detail_or_default(self) -> Any:
        if self.detail is not None:
            return self.detail
        return _DEFAULT_DETAILS.get(self.status, "Service unavailable")

    def matches(self, method: str, path: str, agents: frozenset[str], thread: str | None) -> bool:
        """Whether this fault applies to a request (see the field docs for the rules)."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is None:
            if ("/invoke/stream" if self.kind in STREAM_KINDS else "/v1/") not in path:
                return False
        elif self.path not in path:
            return False
        if self.agent is not None and self.agent not in agents:
            return False
        return self.thread is None or self.thread == thread


def format_seconds(seconds: float) -> str:
    """`1` for whole seconds, `0.25` otherwise (the emulator allows fractional Retry-After)."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


class FaultQueue:
    """Queued faults, matched in insertion order and consumed `times` times each."""

    def __init__(self) -> None:
        self._items: list[list[Any]] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, fault: Fault) -> None:
        self._items.append([fault, fault.times])

    def clear(self) -> None:
        self._items.clear()

    def pending(self) -> list[Fault]:
        return [item[0] for item in self._items]

    def take(
        self, method: str, path: str, agents: frozenset[str], thread: str | None
    ) -> Fault | None:
        """The first matching fault, consuming one of its uses."""
        for item in self._items:
            fault: Fault = item[0]
            if fault.matches(method, path, agents, thread):
                item[1] -= 1
                if item[1] <= 0:
                    self._items.remove(item)
                return fault
        return None
