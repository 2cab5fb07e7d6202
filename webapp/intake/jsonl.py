"""OpenAI batch JSONL from users: read line by line, each line checked as the provider would check it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import IO

from webapp.intake import formats
from webapp.intake import requests as request_lines
from webapp.intake.requests import UploadReport
from webapp.models import BatchJob

READ_SIZE = 1024 * 1024


def jsonl_rows(job: BatchJob, stream: IO[bytes], report: UploadReport) -> Iterator[dict]:
    """The request rows of a JSONL stream, read as they are inserted; each bad line is noted in ``report``.
    Refuses empty and binary files before reading on."""
    formats.check_text(formats.peek(stream))
    limit = request_lines.max_request_bytes()
    validator = request_lines.RequestValidator(job, limit)
    return request_lines.checked_rows(_lines(stream, limit), partial(_check_line, validator), report)


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each non-blank line, without its line end; None for a line over ``limit`` bytes,
    read past in pieces rather than kept (``readline`` takes linear time however long the line)."""
    number = 0
    while raw := stream.readline(limit + 2):  # the line, its "\r\n", or one byte more: it goes on
        number += 1
        whole = raw.endswith(b"\n") or len(raw) < limit + 2
        raw = raw.rstrip(b"\r\n")
        if not whole or len(raw) > limit:
            while not whole and (rest := stream.readline(READ_SIZE)):
                whole = rest.endswith(b"\n")
            yield number, None
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            yield number, raw


def _check_line(validator: request_lines.RequestValidator, raw: bytes | None, number: int) -> dict:
    """Validate one JSONL line as read by ``_lines``: its length, its encoding, then the request it holds."""
    if raw is None:
        raise request_lines.InvalidLine(
            "line_too_large", f"the line is {request_lines.too_large(validator.max_request_bytes)}"
        )
    try:
        return validator.check_text(raw, number)  # orjson checks the UTF-8 as it parses
    except request_lines.InvalidLine as exc:
        if exc.code == "invalid_json_line" and not _is_utf8(raw):
            raise request_lines.InvalidLine("invalid_encoding", "the line is not valid UTF-8") from None
        raise


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
