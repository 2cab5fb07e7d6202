"""Logging set-up: one JSON (or text) line per event, carrying the request id and the job id in context."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

# Never mutated in place (each binding sets a new dict), so one shared empty default is safe.
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("log_context", default={})  # noqa: B039
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
# PostgreSQL's DETAIL line quotes the key or the whole row a constraint refused (a token hash, an email).
DATABASE_DETAIL = re.compile(r"^DETAIL:.*$", re.MULTILINE)


@contextmanager
def log_context(**values) -> Iterator[None]:
    """Add ``values`` (request_id, job_id, rq_job_id...) to every log record emitted inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**values) -> None:
    """Add ``values`` to the current context until it ends (a request or a job)."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


def current_log_context() -> dict:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record, as fields (JSON) or a suffix (text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get()
        for key, value in values.items():
            setattr(record, key, value)
        record.context = "".join(f" {k}={v}" for k, v in values.items())
        return True


class RedactingFormatter(logging.Formatter):
    """Tracebacks without the database's DETAIL lines (the engine already hides statement parameters)."""

    def formatException(self, ei) -> str:
        return DATABASE_DETAIL.sub("DETAIL: (hidden)", super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # never reuse a traceback another handler formatted without redaction
        return super().format(record)


class JsonLinesFormatter(RedactingFormatter, JsonFormatter):
    """One JSON object per record, tracebacks redacted."""


def configure_logging(level: str, fmt: str, stream=None) -> None:
    """Send the root logger to ``stream`` (stderr) in the chosen format; safe to call more than once."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonLinesFormatter(
                JSON_FIELDS,
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                reserved_attrs=[*_RESERVED, "context"],
            )
        )
    else:
        handler.setFormatter(RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_batches_handler", False)]:
        root.removeHandler(old)
    handler._batches_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Per-request lines come from our own middleware; werkzeug's access log would duplicate them.
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


_RESERVED = [
    "args",
    "asctime",
    "created",
    "exc_info",
    "exc_text",
    "filename",
    "funcName",
    "levelno",
    "lineno",
    "module",
    "msecs",
    "msg",
    "pathname",
    "process",
    "processName",
    "relativeCreated",
    "stack_info",
    "thread",
    "threadName",
    "taskName",
]


REQUEST_ID_HEADER = "X-Request-ID"


def init_request_logging(app) -> None:
    """Give each HTTP request an id (the caller's X-Request-ID or a new one), echo it, and log one line."""
    import re
    import time
    import uuid

    from flask import g, request

    access = logging.getLogger("webapp.access")
    valid = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

    @app.before_request
    def _start_request() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if valid.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        bind_log_context(request_id=g.request_id)

    @app.after_request
    def _finish_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
            elapsed_ms = round((time.perf_counter() - g.request_started) * 1000, 1)
            access.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": elapsed_ms,
                    "remote_addr": request.remote_addr,
                },
            )
        return response

    @app.teardown_request
    def _clear_context(exc) -> None:
        _context.set({})
