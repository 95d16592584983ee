"""How long store rows live: defaults shared by every store, and the argument check."""

from __future__ import annotations

__all__ = [
    "DEFAULT_CLAIM_TTL",
    "DEFAULT_THREAD_RETENTION",
    "refill",
    "require_bucket",
    "require_positive",
]

DEFAULT_CLAIM_TTL = 7 * 24 * 3600.0
"""How long a delivery claim (the record that an answer was delivered) outlives its
turn, so a late duplicate still loses."""

DEFAULT_THREAD_RETENTION = 90 * 24 * 3600.0
"""How long a conversation key keeps its thread after its last turn."""


def require_positive(name: str, value: float) -> None:
    """Raise `ValueError` unless `value` is a positive number of seconds."""
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def require_bucket(capacity: float, refill_per_second: float) -> None:
    """Raise `ValueError` unless a token bucket's capacity and refill rate are positive."""
    if not capacity > 0:
        raise ValueError(f"capacity must be a positive number of tokens, got {capacity!r}")
    if not refill_per_second > 0:
        raise ValueError(
            f"refill_per_second must be a positive number of tokens, got {refill_per_second!r}"
        )


def refill(
    tokens: float, elapsed: float, capacity: float, refill_per_second: float
) -> tuple[float, float]:
    """A token bucket `elapsed` seconds on, then one token taken if there is one: the tokens
    left, and 0.0 when one was taken or else the seconds until one will be. The rule the
    Redis script and the Postgres statement repeat in their own language."""
    level = min(capacity, tokens + max(0.0, elapsed) * refill_per_second)
    if level >= 1.0:
        return level - 1.0, 0.0
    return level, (1.0 - level) / refill_per_second
