"""The service's logs: one JSON object per line, with the request's ids, and no secrets.

:func:`configure_logging` installs one handler on the root logger (standard
error) with :class:`RedactingFilter` and either :class:`JsonFormatter`
(``ATM_LOG_FORMAT=json``, the default) or a plain text line (``text``, for a
developer's terminal). Every record logged while a request is served carries
that request's id, and its user and device once known, from
:data:`request_ids` (set by :mod:`atm_service.request_log`).

A JSON line holds ``ts`` (UTC, RFC 3339 with milliseconds), ``level``,
``logger``, ``msg``, the request's ``request_id``/``user_id``/``device`` when
there is one, every ``extra`` field of the record, and ``exc`` (the traceback)
for an exception. Everything passes :mod:`atm_service.redaction` first, the
traceback too.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from atm_service.config import Settings
from atm_service.redaction import redact_text, redact_value


@dataclass
class RequestIds:
    """Who and what the current request is about; filled in as the request is served."""

    request_id: str
    user_id: int | None = None
    device: str | None = None


request_ids: ContextVar[RequestIds | None] = ContextVar("atm_request_ids", default=None)

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
HANDLER_NAME = "atm-service"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and every extra field of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact_text(message)
        record.args = None
        for name, value in _extras(record).items():
            setattr(record, name, redact_value(name, value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        record.exc_info = None  # the text above stands for it: nothing unmasked is formatted
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = request_ids.get()
        if ids is not None:
            line["request_id"] = ids.request_id
            if ids.user_id is not None:
                line["user_id"] = ids.user_id
            if ids.device is not None:
                line["device"] = ids.device
        for name, value in _extras(record).items():
            line.setdefault(name, _jsonable(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """A readable line: time, level, logger, message, then the ids and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        fields = dict(_extras(record))
        ids = request_ids.get()
        if ids is not None:
            fields.setdefault("request_id", ids.request_id)
            if ids.user_id is not None:
                fields.setdefault("user_id", ids.user_id)
            if ids.device is not None:
                fields.setdefault("device", ids.device)
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{text} {tail}" if tail else text
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return text


def make_handler(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (standard error) in the settings' format, redacting."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every logger's records through one redacting handler at the settings' level.

    Replaces a handler installed by an earlier call, so calling it twice is harmless;
    uvicorn's own loggers propagate to it (serve with ``log_config=None``).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    root.addHandler(make_handler(settings, stream))
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
