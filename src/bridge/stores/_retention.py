"""How long store rows live: defaults shared by every store, and the argument check."""

from __future__ import annotations

__all__ = ["DEFAULT_CLAIM_TTL", "DEFAULT_THREAD_RETENTION", "require_positive"]

DEFAULT_CLAIM_TTL = 7 * 24 * 3600.0
"""How long a delivery claim (the record that an answer was delivered) outlives its
turn, so a late duplicate still loses."""

DEFAULT_THREAD_RETENTION = 90 * 24 * 3600.0
"""How long a conversation key keeps its thread after its last turn."""


def require_positive(name: str, value: float) -> None:
    """Raise `ValueError` unless `value` is a positive number of seconds."""
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
