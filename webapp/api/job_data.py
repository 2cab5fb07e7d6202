"""A job's data: its requests and responses (cursor-paged), its timeline, and the streamed results."""

from flask import url_for
from flask_openapi3.models import RequestBody
from flask_openapi3.utils import parse_body

from webapp.api.auth import current_actor, load_job
from webapp.api.blueprint import CONTENTS, bp
from webapp.api.http import respond, stream, streamed_items, streams_json
from webapp.api.schemas import (
    MAX_LINES_PER_CALL,
    EventsQuery,
    JobPath,
    RequestLine,
    RequestLines,
    RequestPath,
    RequestsQuery,
    ResponsesQuery,
    ResultsQuery,
)
from webapp.api.serialisers import (
    AddedOut,
    EventList,
    RequestList,
    RequestOut,
    ResponseList,
    error_responses,
    event_out,
    request_out,
    response_out,
)
from webapp.errors import NotFound
from webapp.intake import imports
from webapp.intake.requests import max_request_bytes
from webapp.services import exports, queries, xlsx_exports

NOT_FOUND = error_responses(404)
RESULT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv", "xlsx": xlsx_exports.MIMETYPE}


def _next(endpoint: str, job_id: int, next_after: int | None, **params) -> str | None:
    if next_after is None:
        return None
    return url_for(endpoint, job_id=job_id, after=next_after, **{k: v for k, v in params.items() if v is not None})


REQUEST_LINES, REQUEST_LINE_SCHEMAS = parse_body(RequestLines)  # documented as a body, read as a stream
bp.components_schemas.update(REQUEST_LINE_SCHEMAS)


@bp.post(
    "/jobs/<int:job_id>/requests",
    tags=[CONTENTS],
    responses={201: AddedOut, **error_responses(400, 404, 409, 413, 415)},
    openapi_extensions={"requestBody": RequestBody(content=REQUEST_LINES, required=True)},
)
@streams_json
def add_requests(path: JobPath):
    """Add requests to a draft job: all of them or, when one is invalid, none.

    Each item is `{custom_id, body}` or a full batch line with `method` and `url`. Invalid items are listed
    in the error's details by position (`[3]`) with the reason. The body is read as it arrives: at most
    100,000 items, each at most `MAX_REQUEST_MB` and nested at most 64 levels.
    """
    job = load_job(path.job_id)
    items = streamed_items(RequestLine, max_items=MAX_LINES_PER_CALL, max_item_bytes=max_request_bytes())
    added = imports.add_requests(job, (item.line() for item in items), actor=current_actor())
    return respond(AddedOut(added=added, total_requests=job.total_requests), 201)


@bp.get("/jobs/<int:job_id>/requests", tags=[CONTENTS], responses={200: RequestList, **NOT_FOUND})
def list_requests(path: JobPath, query: RequestsQuery):
    """List the job's requests with their responses, by id; filter by status or a custom_id prefix."""
    job = load_job(path.job_id)
    page = queries.list_requests(
        job.id, status=query.status, search=query.custom_id, after=query.after, limit=query.limit
    )
    link = _next(
        "api.list_requests", job.id, page.next_after, limit=query.limit, status=query.status, custom_id=query.custom_id
    )
    return respond(RequestList(data=[request_out(*row) for row in page.items], next_after=page.next_after, next=link))


@bp.get("/jobs/<int:job_id>/requests/<bigint:request_id>", tags=[CONTENTS], responses={200: RequestOut, **NOT_FOUND})
def get_request(path: RequestPath):
    """Show one request with its response."""
    job = load_job(path.job_id)
    row = queries.get_request(job.id, path.request_id)
    if row is None:
        raise NotFound(f"request {path.request_id} not found in job {job.id}")
    return respond(request_out(*row))


@bp.get("/jobs/<int:job_id>/responses", tags=[CONTENTS], responses={200: ResponseList, **NOT_FOUND})
def list_responses(path: JobPath, query: ResponsesQuery):
    """List the job's responses, by id; `succeeded=true` or `false` keeps successes or failures only."""
    job = load_job(path.job_id)
    page = queries.list_responses(job.id, succeeded=query.succeeded, after=query.after, limit=query.limit)
    succeeded = None if query.succeeded is None else str(query.succeeded).lower()
    link = _next("api.list_responses", job.id, page.next_after, limit=query.limit, succeeded=succeeded)
    data = [response_out(response, custom_id) for response, custom_id in page.items]
    return respond(ResponseList(data=data, next_after=page.next_after, next=link))


@bp.get("/jobs/<int:job_id>/events", tags=[CONTENTS], responses={200: EventList, **NOT_FOUND})
def list_events(path: JobPath, query: EventsQuery):
    """The job's timeline, oldest first."""
    job = load_job(path.job_id)
    page = queries.list_events(job.id, after=query.after, limit=query.limit)
    link = _next("api.list_events", job.id, page.next_after, limit=query.limit)
    return respond(EventList(data=[event_out(e) for e in page.items], next_after=page.next_after, next=link))


@bp.get(
    "/jobs/<int:job_id>/results",
    tags=[CONTENTS],
    responses={
        200: {
            "description": "The results, streamed as a download (Content-Disposition names the file).",
            "content": {mimetype: {"schema": {"type": "string"}} for mimetype in RESULT_TYPES.values()},
        },
        **NOT_FOUND,
    },
)
def download_results(path: JobPath, query: ResultsQuery):
    """Download the results: JSONL in OpenAI's batch output format, or CSV or Excel (.xlsx) with your own columns
    first (in .xlsx, numbers as numbers).

    Every request has a line or row, in request order; unfinished requests carry their state as the error.
    """
    job = load_job(path.job_id)
    failed = "-failed" if query.failed_only else ""
    if query.format == "csv":
        chunks = exports.csv_chunks(job, failed_only=query.failed_only)
    elif query.format == "xlsx":
        chunks = xlsx_exports.xlsx_chunks(job, failed_only=query.failed_only)
    else:
        chunks = exports.jsonl_lines(job, failed_only=query.failed_only)
    return stream(chunks, RESULT_TYPES[query.format], f"job-{job.id}-results{failed}.{query.format}")
