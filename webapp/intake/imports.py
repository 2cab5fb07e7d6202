"""Requests taken into draft jobs: a file (JSONL or a table), or the API's list; each use case one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.intake import files, formats, jsonl, table_requests, tables
from webapp.intake import requests as request_lines
from webapp.intake.mapping import Mapping
from webapp.intake.requests import UploadReport
from webapp.intake.store import note_requests_added, store_file_rows
from webapp.intake.tables import TableInfo
from webapp.models import BatchJob
from webapp.services import jobs
from webapp.words import count_of


@dataclass(frozen=True)
class SourceFile:
    """A file to take requests from: where it is, its name as the user knows it, its format and, for a table,
    what was found in it."""

    path: Path
    filename: str
    format: str
    info: TableInfo | None = None

    @classmethod
    def stored(cls, path: Path, filename: str = "", sheet: str | None = None) -> SourceFile:
        """The stored upload at ``path``; a table is inspected (once: see ``tables.inspect_stored``), a workbook's
        ``sheet`` (the first when None)."""
        kind = formats.of_path(path)
        info = None if kind == formats.JSONL else tables.inspect_stored(path, sheet)
        return cls(path, filename or path.name, kind, info)


@contextmanager
def _one_transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back when it raises."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


@dataclass(frozen=True)
class Options:
    """How a file's requests are taken: ``skip_invalid`` stores the valid ones and reports the others (else one
    bad row refuses the file); ``skip_empty`` leaves out a table's rows whose placeholders are all empty;
    ``send_once`` sends each distinct request once, its answer copied to the rows that repeat it."""

    skip_invalid: bool = False
    skip_empty: bool = False
    send_once: bool = False
    actor: str = "system"


def import_jsonl(job: BatchJob, stream: IO[bytes], *, filename: str = "requests.jsonl", **options: Any) -> UploadReport:
    """Validate every line of an OpenAI batch file and store its requests in the draft job (``Options``).

    All or nothing unless ``skip_invalid``: with a bad line, raises UploadRejected and stores none.
    The file is read as a stream and written in chunks, never held in memory.
    """
    jobs.require_draft(job, "add requests to")
    with _one_transaction():
        return _store_jsonl(job, stream, filename, Options(**options))


def import_table(
    job: BatchJob,
    path: Path,
    mapping: Mapping | None,
    *,
    filename: str,
    info: TableInfo | None = None,
    sheet: str | None = None,
    **options: Any,
) -> UploadReport:
    """Render every row of a table (a workbook's ``sheet``, else its first) through the mapping and store the
    requests in the draft job (all or nothing unless ``skip_invalid``; the rest of ``Options`` too).

    ``info``: what ``tables.inspect`` found in the file, when a previous step has inspected it already."""
    jobs.require_draft(job, "add requests to")
    source = SourceFile(path, filename, formats.of_path(path), info or tables.inspect(path, sheet))
    with _one_transaction():
        return _store_table(job, source, _usable(mapping, source), Options(**options))


def add_upload(
    job: BatchJob,
    stream: IO[bytes],
    *,
    filename: str,
    content_type: str | None = None,
    declared: str | None = None,
    mapping: Mapping | None = None,
    sheet: str | None = None,
    **options: Any,
) -> UploadReport:
    """Store the requests of an uploaded file, of whichever format ``formats.detect`` tells, in the draft job."""
    kind = formats.detect(filename, content_type, stream, declared)
    if kind == formats.JSONL:
        return import_jsonl(job, stream, filename=filename, **options)
    with files.stored_for_now(stream, formats.suffix(kind)) as path:
        return import_table(job, path, mapping, filename=filename, sheet=sheet, **options)


def preview_upload(
    job: BatchJob,
    stream: IO[bytes],
    mapping: Mapping | None,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    sheet: str | None = None,
    limit: int = 3,
    skip_empty: bool = False,
    send_once: bool = False,
) -> tuple[TableInfo, dict | None]:
    """What was found in an uploaded table and, with a mapping, the preview of its requests; stores nothing."""
    kind = formats.detect(filename, content_type, stream)
    if kind not in formats.TABLES:
        raise formats.refused("only a table (CSV or an Excel workbook) has a preview; this file is JSONL")
    with files.stored_for_now(stream, formats.suffix(kind)) as path:
        info = tables.inspect(path, sheet)
        if mapping is None:
            return info, None
        rendered = table_requests.preview(job, path, info, mapping, limit, skip_empty=skip_empty, send_once=send_once)
        return info, rendered


def create_job_from_file(
    settings: dict[str, Any],
    source: SourceFile,
    mapping: Mapping | None,
    *,
    owner_id: int | None = None,
    allow_unknown_model: bool = False,
    **options: Any,
) -> tuple[BatchJob, UploadReport]:
    """Create a draft job and store the file's requests in it (``Options``), in one transaction: when the file
    (or a setting) is refused, no job remains."""
    taken = Options(**options)
    if source.info:
        mapping = _usable(mapping, source)
    with _one_transaction():
        job = jobs.new_draft(settings, actor=taken.actor, owner_id=owner_id, allow_unknown_model=allow_unknown_model)
        if source.info and mapping:
            report = _store_table(job, source, mapping, taken)
        else:
            with open(source.path, "rb") as stream:
                report = _store_jsonl(job, stream, source.filename, taken)
    return job, report


def create_job_from_upload(
    settings: dict[str, Any],
    stream: IO[bytes],
    mapping: Mapping | None,
    *,
    filename: str,
    content_type: str | None = None,
    declared: str | None = None,
    sheet: str | None = None,
    **options: Any,
) -> tuple[BatchJob, UploadReport]:
    """``create_job_from_file`` for a file still being received (the API's): its format told by
    ``formats.detect``, kept on disk while it is read."""
    kind = formats.detect(filename, content_type, stream, declared)
    with files.stored_for_now(stream, formats.suffix(kind)) as path:
        info = tables.inspect(path, sheet) if kind in formats.TABLES else None
        return create_job_from_file(settings, SourceFile(path, filename, kind, info), mapping, **options)


def _usable(mapping: Mapping | None, source: SourceFile) -> Mapping:
    """The mapping, checked against the table's columns; raises ValidationFailed without one or with problems."""
    if mapping is None:
        raise ValidationFailed(
            "a CSV file needs a prompt template",
            details=[{"field": "template", "message": "required for CSV files, e.g. 'Classify: {{ Text }}'"}],
        )
    assert source.info is not None
    table_requests.require_usable(mapping, source.info)
    return mapping


def _store_jsonl(job: BatchJob, stream: IO[bytes], filename: str, options: Options) -> UploadReport:
    report = UploadReport()
    return store_file_rows(
        job,
        jsonl.jsonl_rows(job, stream, report),
        report,
        source={"format": "jsonl", "filename": filename},
        skip_invalid=options.skip_invalid,
        send_once=options.send_once,
        actor=options.actor,
        nothing="the file holds no requests",
    )


def _store_table(job: BatchJob, source: SourceFile, mapping: Mapping, options: Options) -> UploadReport:
    assert source.info is not None
    report = UploadReport()
    rows = table_requests.request_rows(job, source.path, source.info, mapping, report, skip_empty=options.skip_empty)
    return store_file_rows(
        job,
        rows,
        report,
        source=table_requests.source_of(source.filename, source.info, mapping),
        skip_invalid=options.skip_invalid,
        send_once=options.send_once,
        actor=options.actor,
        nothing="no row of the file could become a request",
    )


def add_requests(job: BatchJob, items: Iterable[Any], *, actor: str = "system") -> int:
    """Add request objects to a draft job, all or none: with a bad one, raises ValidationFailed naming each bad
    item by its index (``[3]``) with the reason, and stores none.

    Items are validated and written a chunk at a time as they come, so ``items`` may be a body still streaming in.
    """
    jobs.require_draft(job, "add requests to")
    with _one_transaction():
        report = UploadReport()
        validator = request_lines.RequestValidator(job, request_lines.max_request_bytes())
        rows = request_lines.checked_rows(enumerate(items, 1), validator.check, report)
        count, tokens = request_lines.insert_new(job, rows, report)
        if report.problem_count or not count:
            raise _refused(report)
        message = f"Added {count_of(count, 'request')}"
        note_requests_added(job, count, tokens, message, data={"count": count}, actor=actor)
    return count


def _refused(report: UploadReport) -> ValidationFailed:
    if not report.problem_count:
        return ValidationFailed("no requests given", details=[{"field": "", "message": "send at least one request"}])
    problems = sorted(report.problems, key=lambda problem: problem.line)
    return ValidationFailed(
        f"{count_of(report.problem_count, 'request is', 'requests are')} invalid; none was added",
        details=[{"field": f"[{p.line - 1}]", "message": f"{p.code}: {p.message}"} for p in problems],
    )
