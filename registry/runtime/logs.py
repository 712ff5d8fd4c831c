"""Logs as text (the default) or as JSON lines, one event a line, each with the id of the
request it happened in. Credentials are masked in both, whatever logged them."""

from __future__ import annotations

import logging
import re
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# Set by `RequestContext` for the request being served; empty outside requests (workers).
request_id: ContextVar[str] = ContextVar("request_id", default="")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What every LogRecord has; anything else was passed with `extra=` and is a field of the event.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(r"secret|token|password|authorization|cookie|credential", re.I)
# `Bearer x`, `Basic x`, and `token=x`-like pairs in free text.
_SECRET_TEXT = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|\b((?:access_|refresh_|id_|scrape_)?token|secret|password|code)=[^\s&\"']+"
)
MASK = "[redacted]"


def redact(text: str) -> str:
    return _SECRET_TEXT.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    scheme, name = match.group(1), match.group(2)
    return f"{scheme} {MASK}" if scheme else f"{name}={MASK}"


class RedactingFormatter(logging.Formatter):
    """The text format, credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, the `extra=` fields
    (those named like secrets masked) and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": request_id.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in event:
                event[name] = MASK if _SECRET_NAME.search(name) else value
        if record.exc_info:
            event["exception"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return orjson.dumps(event, default=str).decode()


def configure(log_format: str) -> None:
    """Format every handler of the root logger (set up by `logging.basicConfig`) as asked."""
    formatter = JsonFormatter() if log_format == "json" else RedactingFormatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
