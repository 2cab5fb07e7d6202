"""File endpoints: add a JSONL, CSV or Excel file's requests to a draft job; preview how a table maps to requests."""

from pathlib import PurePath

from flask import url_for
from werkzeug.datastructures import FileStorage

from webapp.api.auth import creator_id, current_actor, load_job
from webapp.api.blueprint import FILES, bp
from webapp.api.http import respond
from webapp.api.schemas import JobFromFileForm, JobPath, PreviewForm, UploadForm
from webapp.api.serialisers import (
    CsvPreviewOut,
    JobFromFileOut,
    UploadReportOut,
    csv_preview_out,
    error_responses,
    job_detail,
    report_out,
)
from webapp.intake import imports

FILE_ERRORS = error_responses(404, 413, 415)


@bp.post(
    "/jobs/<int:job_id>/files", tags=[FILES], responses={201: UploadReportOut, **FILE_ERRORS, **error_responses(409)}
)
def upload_file(path: JobPath, form: UploadForm):
    """Add the requests of a JSONL, CSV or Excel (.xlsx) file to a draft job: all of them, or none when a line is
    invalid.

    JSONL: OpenAI batch lines. CSV or a workbook's sheet (`sheet`, default the first): a header row, then one
    request per row made from `template`; numbers in a workbook reach the template as a person reads them
    (3, not 3.0; dates as 2024-03-01).
    With `skip_invalid=true` the valid lines are stored and the others reported.
    """
    job = load_job(path.job_id)
    report = imports.add_upload(
        job,
        form.file.stream,
        filename=_filename(form.file),
        content_type=form.file.mimetype,
        declared=form.format,
        mapping=form.mapping(),
        sheet=form.sheet.strip() or None,
        skip_invalid=form.skip_invalid,
        skip_empty=form.skip_empty,
        send_once=form.send_duplicates_once,
        actor=current_actor(),
    )
    return respond(report_out(report), 201)


@bp.post("/jobs/<int:job_id>/files/preview", tags=[FILES], responses={200: CsvPreviewOut, **FILE_ERRORS})
def preview_file(path: JobPath, form: PreviewForm):
    """Preview a CSV file or a workbook's sheet without storing it: what was found and, with a template, the first
    requests.

    The file's encoding and delimiter (CSV) or sheet and sheets (a workbook), columns and first rows; with
    `template`, the first requests it would make, the rows that would be rejected and the estimated cost of the
    whole file.
    """
    job = load_job(path.job_id)
    info, rendered = imports.preview_upload(
        job,
        form.file.stream,
        form.mapping(),
        filename=form.file.filename,
        content_type=form.file.mimetype,
        sheet=form.sheet.strip() or None,
        limit=form.limit,
        skip_empty=form.skip_empty,
        send_once=form.send_duplicates_once,
    )
    return respond(csv_preview_out(info, rendered))


def _filename(file: FileStorage) -> str:
    """The name as sent, without path or characters that cannot be stored."""
    name = "".join(c for c in PurePath((file.filename or "").replace("\\", "/")).name if c.isprintable())
    return name[:200] or "upload"


@bp.post(
    "/jobs/from-file",
    tags=[FILES],
    responses={201: JobFromFileOut, **FILE_ERRORS, **error_responses(429)},
)
def create_job_from_file(form: JobFromFileForm):
    """Create a draft job from a file in one call: its settings and its requests, or nothing at all.

    The form has `POST /jobs/`'s fields (but `metadata`) and `POST /jobs/{id}/files`' fields; when the file or a
    setting is refused no job remains. The response's `Location` header is the job's URL.
    """
    job, report = imports.create_job_from_upload(
        form.settings(),
        form.file.stream,
        form.mapping(),
        filename=_filename(form.file),
        content_type=form.file.mimetype,
        declared=form.format,
        sheet=form.sheet.strip() or None,
        owner_id=creator_id(),
        allow_unknown_model=form.allow_unknown_model,
        skip_invalid=form.skip_invalid,
        skip_empty=form.skip_empty,
        send_once=form.send_duplicates_once,
        actor=current_actor(),
    )
    out = JobFromFileOut(job=job_detail(job), report=report_out(report))
    return respond(out, 201, headers={"Location": url_for("api.get_job", job_id=job.id)})
