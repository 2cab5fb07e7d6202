"""Creating a job from a file: a JSONL checked line by line, or a table (CSV or a workbook's sheet) mapped to
requests with a live preview."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.access import actor
from webapp.dashboard.blueprint import bp
from webapp.dashboard.forms import NewJobForm
from webapp.dashboard.htmx import page_or_fragment
from webapp.errors import AppError, ValidationFailed
from webapp.intake import files, formats, imports, table_requests
from webapp.intake.imports import SourceFile
from webapp.intake.requests import UploadReport
from webapp.intake.store import UploadRejected
from webapp.intake.tables import TableInfo
from webapp.models import BatchJob
from webapp.words import count_of


@dataclass(frozen=True)
class Upload:
    """A file stored between the steps of the form: its token, and the file the service reads."""

    token: str
    source: SourceFile
    fresh: bool  # arrived with this submission

    @classmethod
    def load(cls, token: str, filename: str, sheet: str | None = None, fresh: bool = False) -> Upload:
        return cls(token, SourceFile.stored(files.upload_path(token), filename, sheet or None), fresh)

    @property
    def filename(self) -> str:
        return self.source.filename

    @property
    def info(self) -> TableInfo | None:
        return self.source.info


@bp.route("/jobs/new", methods=["GET", "POST"])
def new_job():
    form = NewJobForm()
    if not form.is_submitted():
        return render_new_job(form)
    form.validate()
    with upload_dropped_on_crash(form):
        upload = receive_upload(form)
        if upload is None or has_errors(form) or (upload.info and upload.fresh):
            return render_new_job(form, upload, status=422 if has_errors(form) else 200)
        try:
            job, report = imports.create_job_from_file(
                form.job_settings(),
                upload.source,
                form.mapping() if upload.info else None,
                owner_id=current_user.id,
                actor=actor(current_user),
                allow_unknown_model=form.allow_unknown_model.data,
                skip_invalid=form.skip_invalid.data,
                **(form.row_options() if upload.info else {}),
            )
        except UploadRejected as exc:
            return render_new_job(form, upload, report=exc.report, status=422)
        except ValidationFailed as exc:
            return render_new_job(form, upload, unclaimed=form.add_errors(exc, {"upload": "file"}), status=422)
    files.discard_upload(upload.token)
    flash(f"Created the job with {created_words(report)}. Check it, then submit it.", "success")
    return redirect(url_for(".show_job", job_id=job.id))


@contextmanager
def upload_dropped_on_crash(form: NewJobForm) -> Iterator[None]:
    """An unexpected error (a 500) removes the stored upload: no page offers it again, so nothing would."""
    try:
        yield
    except AppError:
        raise  # answered with the form, which offers the upload again
    except Exception:
        files.discard_upload(form.upload.data or "")
        raise


@bp.post("/jobs/new/preview")
def preview_csv():
    """The first requests the table's mapping renders, and the token and cost estimate for the whole file."""
    form = NewJobForm()
    form.validate()
    try:
        with upload_dropped_on_crash(form):
            upload = Upload.load(form.upload.data, form.filename.data, form.sheet.data)
            preview, problems = csv_preview(form, upload)
    except ValidationFailed as exc:  # the stored file has expired or become unreadable
        form.add_errors(exc, {"upload": "file"})
        upload, preview, problems = None, None, messages(exc)
    return page_or_fragment(
        "dashboard/new_job.html",
        "dashboard/_csv_preview.html",
        **new_job_context(form, upload, preview=preview, problems=problems),
    )


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(exc):
    """The body was refused unread, so the form starts empty; the page says why and what the limit is."""
    form = NewJobForm(formdata=None)
    limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    form.file.errors = [
        (
            f"The file is larger than the upload limit of {limit:,} MB. "
            "Split it into smaller files and create one job for each."
        )
    ]
    return render_new_job(form, status=413)


@bp.errorhandler(CSRFError)
def form_expired(exc):
    message = (
        "This form has expired or did not come from this site, so nothing was changed. "
        "Go back, reload the page and try again."
    )
    return render_template("errors/error.html", status=400, code="csrf_error", message=message), 400


def receive_upload(form: NewJobForm) -> Upload | None:
    """The file chosen in this submission (stored for the next step), else the one stored before.

    Problems with the file go next to the file field; a file that cannot be read is not kept.
    """
    file = form.file.data
    try:
        if file and file.filename:
            files.discard_upload(form.upload.data or "")
            form.upload.data = files.save_upload(file.stream, formats.suffix(file_format(file)))
            form.filename.data = Path(file.filename).name
            form.sheet.data = ""  # a new workbook is read from its first sheet
            return Upload.load(form.upload.data, form.filename.data, fresh=True)
        if form.upload.data:
            return Upload.load(form.upload.data, form.filename.data, form.sheet.data)
        raise ValidationFailed("no file", details=[{"field": "file", "message": "Choose the file with the requests"}])
    except ValidationFailed as exc:
        files.discard_upload(form.upload.data or "")
        form.upload.data = form.filename.data = ""
        form.add_errors(exc, {"upload": "file"})
        return None


def file_format(file) -> str:
    """The chosen file's format, by the rule the API follows too."""
    return formats.detect(file.filename, file.mimetype, file.stream)


def csv_preview(form: NewJobForm, upload: Upload) -> tuple[dict | None, list[str]]:
    """The service's preview for the mapping typed so far, or the messages saying why there is none."""
    if not upload.info or not (form.template.data or "").strip():  # the page asks for a template instead
        return None, []
    if form.endpoint.errors:  # requests are checked against the endpoint: one that does not exist checks nothing
        return None, ["Choose one of the endpoints to see the preview."]
    try:
        draft = BatchJob(**form.job_settings())  # never added to the session: a preview stores nothing
        options = form.row_options()
        return table_requests.preview(draft, upload.source.path, upload.info, form.mapping(), **options), []
    except ValidationFailed as exc:
        form.add_errors(exc)
        return None, messages(exc)


def render_new_job(form: NewJobForm, upload: Upload | None = None, *, status: int = 200, **extra):
    if upload and upload.info and form.template.data and "preview" not in extra:
        extra["preview"], extra["problems"] = csv_preview(form, upload)
    return render_template("dashboard/new_job.html", **new_job_context(form, upload, **extra)), status


def new_job_context(form: NewJobForm, upload: Upload | None, **extra) -> dict:
    if upload and upload.info:
        form.set_columns(upload.info.columns)
        form.set_sheets(upload.info.sheets)
        form.sheet.data = upload.info.sheet or ""
    return {
        "form": form,
        "upload": upload,
        "max_upload_bytes": current_app.config.get("MAX_CONTENT_LENGTH"),
        **extra,
    }


def created_words(report: UploadReport) -> str:
    words = count_of(report.added, "request")
    if report.skipped:
        words += f"; skipped {count_of(report.skipped, 'invalid line')}"
    if report.skipped_empty:
        words += f"; left out {count_of(report.skipped_empty, 'row')} with every placeholder empty"
    if report.copies:
        words += f", of which {count_of(report.copies, 'repeat')} will take the answer of the first row that asked"
    return words


def messages(exc: ValidationFailed) -> list[str]:
    return [detail["message"] for detail in exc.details] or [exc.message]


def has_errors(form: NewJobForm) -> bool:
    return any(field.errors for field in form)
