"""File endpoints: add a JSONL or CSV file's requests to a draft job, and preview how a CSV maps to requests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

from werkzeug.datastructures import FileStorage

from webapp.api.auth import current_actor, load_job
from webapp.api.blueprint import FILES, bp
from webapp.api.http import respond
from webapp.api.schemas import JobPath, PreviewForm, UploadForm
from webapp.api.serialisers import CsvPreviewOut, UploadReportOut, csv_preview_out, error_responses, report_out
from webapp.errors import ValidationFailed
from webapp.services import csv_import, uploads

FILE_ERRORS = error_responses(404, 413, 415)
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "csv"}
CONTENT_TYPES = {
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json": "jsonl",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
}


@bp.post(
    "/jobs/<int:job_id>/files", tags=[FILES], responses={201: UploadReportOut, **FILE_ERRORS, **error_responses(409)}
)
def upload_file(path: JobPath, form: UploadForm):
    """Add the requests of a JSONL or CSV file to a draft job: all of them, or none when a line is invalid.

    JSONL: OpenAI batch lines. CSV: a header row, then one request per row made from `template`.
    With `skip_invalid=true` the valid lines are stored and the others reported.
    """
    job = load_job(path.job_id)
    options = {"filename": _filename(form.file), "skip_invalid": form.skip_invalid, "actor": current_actor()}
    if (form.format or _format(form.file)) == "jsonl":
        report = uploads.import_jsonl(job, form.file.stream, **options)
    else:
        mapping = form.mapping()
        with _stored(form.file) as csv_path:
            report = csv_import.import_csv(job, csv_path, mapping, **options)
    return respond(report_out(report), 201)


@bp.post("/jobs/<int:job_id>/files/preview", tags=[FILES], responses={200: CsvPreviewOut, **FILE_ERRORS})
def preview_file(path: JobPath, form: PreviewForm):
    """Preview a CSV file without storing it: what was detected and, with a template, the first requests.

    The file's encoding, delimiter, columns and first rows; with `template`, the first requests it would make,
    the rows that would be rejected and the estimated cost of the whole file.
    """
    job = load_job(path.job_id)
    mapping = form.mapping() if form.template else None
    with _stored(form.file) as csv_path:
        info = csv_import.inspect_csv(csv_path)
        rendered = csv_import.preview(job, csv_path, info, mapping, limit=form.limit) if mapping else None
    return respond(csv_preview_out(info, rendered))


def _format(file: FileStorage) -> str:
    """The format from the file's name, else its content type; 422 when neither tells."""
    found = SUFFIXES.get(PurePath(file.filename or "").suffix.lower()) or CONTENT_TYPES.get(file.mimetype)
    if found is None:
        raise ValidationFailed(
            "cannot tell whether the file is JSONL or CSV; send format=jsonl or format=csv",
            details=[{"field": "format", "message": "required for this file name and type"}],
        )
    return found


def _filename(file: FileStorage) -> str:
    """The name as sent, without path or characters that cannot be stored."""
    name = "".join(c for c in PurePath((file.filename or "").replace("\\", "/")).name if c.isprintable())
    return name[:200] or "upload"


@contextmanager
def _stored(file: FileStorage) -> Iterator[Path]:
    """The upload saved to a temporary file (the CSV reader needs a file), removed afterwards."""
    token = uploads.save_upload(file.stream, ".csv")
    try:
        yield uploads.upload_path(token)
    finally:
        uploads.discard_upload(token)
