"""A job's requests and results: the key-paged table, one request in full, and the streamed downloads."""

from __future__ import annotations

from flask import Response, abort, request, stream_with_context
from flask_login import current_user

from webapp.access import load_job
from webapp.dashboard.blueprint import bp
from webapp.dashboard.forms import RequestFilterForm
from webapp.dashboard.htmx import page_or_fragment
from webapp.services import exports, queries, xlsx_exports

PAGE_SIZE = 50
# Excel reads a CSV without a byte order mark in the local code page, which garbles non-ASCII text.
UTF8_BOM = "\ufeff".encode()


@bp.get("/jobs/<int:job_id>/requests")
def list_requests(job_id: int):
    job = load_job(job_id, current_user)
    form = RequestFilterForm(formdata=request.args).checked()
    page = queries.list_requests(job.id, limit=PAGE_SIZE, **form.filters())
    return page_or_fragment("dashboard/requests.html", "dashboard/_requests_table.html", job=job, form=form, page=page)


@bp.get("/jobs/<int:job_id>/requests/<bigint:request_id>")
def show_request(job_id: int, request_id: int):
    job = load_job(job_id, current_user)
    found = queries.get_request(job.id, request_id)
    if found is None:
        abort(404, f"Request {request_id} is not part of job {job.id}.")
    req, response = found
    return page_or_fragment(
        "dashboard/request.html", "dashboard/_request_detail.html", job=job, req=req, response=response
    )


@bp.get("/jobs/<int:job_id>/results.<any(csv, jsonl, xlsx):kind>")
def download_results(job_id: int, kind: str):
    """Stream the results (``?only=failed`` for the failed rows): a million rows leave in chunks."""
    job = load_job(job_id, current_user)
    failed_only = request.args.get("only") == "failed"
    if kind == "csv":
        chunks, mimetype = _with_bom(exports.csv_chunks(job, failed_only)), "text/csv; charset=utf-8"
    elif kind == "xlsx":
        chunks, mimetype = xlsx_exports.xlsx_chunks(job, failed_only), xlsx_exports.MIMETYPE
    else:
        chunks, mimetype = exports.jsonl_lines(job, failed_only), "application/x-ndjson"
    name = f"job-{job.id}-{'failed' if failed_only else 'results'}.{kind}"
    return Response(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _with_bom(chunks):
    yield UTF8_BOM
    yield from chunks
