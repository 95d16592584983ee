"""Logging: context fields on every record (task id, agent, source, conversation key),
plain or JSON output, and redaction of every configured secret.

Secrets are `SecretStr` everywhere, so they should never reach a log line; the
redaction filter is the second line of defence for strings that embed one (an
exception message quoting a URL with a token, say).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

__all__ = ["configure_logging", "log_context", "redactor", "update_log_context"]

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "bridge_log_context", default=None
)
_FIELDS = ("key", "agent", "source", "task_id", "turn")
_MASK = "********"
#: Libraries that log request bodies, URLs with tokens or one line per request at INFO.
_THIRD_PARTY = (
    "slack_bolt",
    "slack_sdk",
    "bridge_slack.bolt",
    "telegram",
    "httpx",
    "httpcore",
    "aiohttp",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "mcp",
    "sse_starlette",
    "redis",
    "asyncio",
)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every log record emitted inside the block (same task or its children)."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def update_log_context(**fields: str | None) -> None:
    """Add fields to the current block's context (e.g. the task id once it is known)."""
    current = _CONTEXT.get()
    if current is not None:  # outside any block there is nothing to add to
        current.update({k: v for k, v in fields.items() if v})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _CONTEXT.get() or {}
        for field in _FIELDS:
            if not hasattr(record, field):
                setattr(record, field, context.get(field, ""))
        return True


class _Redactor:
    """Masks every secret as written and in each escaping a log line may carry it in:
    JSON strings (quotes, backslashes, control characters, non-ASCII), Python reprs and
    percent-encoding in URLs."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for s in secrets if len(s) >= 4 for form in _escapings(s)}
        self.secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text


def _escapings(secret: str) -> set[str]:
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms.add(repr(secret)[1:-1])
    forms.add(quote(secret, safe=""))
    forms |= {json.dumps(form)[1:-1] for form in list(forms)}  # a JSON log of a JSON text
    return {form for form in forms if len(form) >= 4}


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function masking every given secret (and its escaped forms) in a text."""
    return _Redactor(secrets)


def _one_line(text: str) -> str:
    """CR and LF escaped: text from outside (a form field, a file name) cannot start a line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _PlainFormatter(logging.Formatter):
    def __init__(self, redact: _Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        context = " ".join(f"{f}={getattr(record, f)}" for f in _FIELDS if getattr(record, f, ""))
        line = _one_line(f"{line} [{context}]" if context else line)
        extra = self.formatException(record.exc_info) if record.exc_info else ""
        if record.stack_info:
            extra += "\n" + self.formatStack(record.stack_info)
        if extra:  # traceback lines are indented, so none can pass for a log line
            line += "".join(f"\n    | {each}" for each in extra.strip("\n").splitlines())
        return self._redact(line)


class _JsonFormatter(logging.Formatter):
    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            value = getattr(record, field, "")
            if value:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(entry, ensure_ascii=False))


def configure_logging(
    level: str, fmt: str = "plain", *, secrets: Iterable[str] = (), stream: Any = None
) -> logging.Handler:
    """Install one stderr handler on the root logger; returns it (tests may remove it)."""
    redact = _Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(_JsonFormatter(redact) if fmt == "json" else _PlainFormatter(redact))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_bridge", False):
            root.removeHandler(existing)
    handler._bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in _THIRD_PARTY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
