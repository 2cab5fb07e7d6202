"""Response shapes of the API (Pydantic v2) and their builders from the database models."""

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Literal

from flask import url_for
from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from webapp.intake.requests import UploadReport
from webapp.models import (
    BatchJob,
    BatchRequest,
    BatchResponse,
    BatchStatus,
    EventKind,
    JobEvent,
    JobStatus,
    ProviderBatch,
    RequestStatus,
)
from webapp.services import queries
from webapp.services.catalog import Catalog

Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.8f}", return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?\d+\.\d{8}$",
            "description": 'US dollars as a decimal string with 8 places, e.g. "0.01250000".',
        }
    ),
]


# --- errors ------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    field: str = Field(description="Where: a dotted path (`metadata.tags`, `[3].custom_id`, `line 7`, `file`).")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(
        description="Machine-readable: bad_request, not_found, method_not_allowed, conflict, "
        "too_large, unsupported_media_type, validation_error, rate_limited, ..."
    )
    message: str = Field(description="A sentence for people.")
    details: list[ErrorDetail] = Field(default_factory=list, description="Per-field problems, when there are any.")


class ErrorOut(BaseModel):
    """Every error of the API has this shape."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[str | int | HTTPStatus, type[BaseModel] | dict[Any, Any] | None]:
    return {status: ErrorOut for status in statuses}


# --- jobs --------------------------------------------------------------------------------------------------


class JobCounts(BaseModel):
    total: int
    pending: int
    in_flight: int
    succeeded: int
    failed: int
    cancelled: int = Field(description="Stopped by the job's cancel before they ran: neither failed nor succeeded.")
    finished: int = Field(description="With a result: succeeded + failed.")
    answered_at_provider: int = Field(
        description="Of the requests in flight, those the provider reports done in its running batches; their "
        "results are stored when the batch ends."
    )


class JobCost(BaseModel):
    estimated: Money | None = Field(
        description="Set on submit: every request's estimated prompt and its full "
        "output allowance; null when the model has no price."
    )
    actual: Money = Field(description="From the tokens used so far.")
    currency: Literal["USD"] = "USD"


class JobTokens(BaseModel):
    prompt: int
    completion: int
    cached: int
    reasoning: int
    estimated_prompt: int = Field(description="Estimated prompt tokens of all requests (about 4 characters each).")


class JobLinks(BaseModel):
    self: str
    requests: str
    responses: str
    events: str
    results: str


class BatchCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchOut(BaseModel):
    """One provider batch: a chunk of the job's requests sent as one input file."""

    id: int
    attempt: int = Field(description="0 for the first try, n for the n-th retry round.")
    chunk_index: int
    status: BatchStatus
    provider_batch_id: str | None
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    request_count: int
    counts: BatchCounts
    errors: list[Any] | None
    last_error: str | None
    created_at: datetime
    provider_created_at: datetime | None
    in_progress_at: datetime | None
    expires_at: datetime | None
    finalizing_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    cancelling_at: datetime | None
    cancelled_at: datetime | None
    ingested_at: datetime | None = Field(description="When the results were stored.")


class Recipe(BaseModel):
    """What the job asks of the model: the same for every request of a CSV job (its prompts and schema), and
    the settings of any job. A JSONL or API job's prompts are in its requests."""

    model: str
    endpoint: str
    max_tokens: int | None = Field(description="Longest answer allowed, in tokens; null: the model's own limit.")
    temperature: float | None = Field(description="null: the model's default.")
    max_retries: int = Field(description="How often a request that failed for a passing reason is sent again.")
    source_format: str = Field(description="Where the requests came from: `csv`, `xlsx`, `jsonl` (a file) or `api`.")
    filename: str | None
    sheet: str | None = Field(description="Workbook jobs: the sheet whose rows became the requests.")
    prompt_template: str | None = Field(description="CSV jobs: the user message, `{{ column }}` filled per row.")
    system_prompt: str | None = Field(description="CSV jobs: the system message (instructions), if any.")
    id_column: str | None = Field(description="CSV jobs: the column whose values are the custom_ids.")
    json_schema: dict[str, Any] | None = Field(description="CSV jobs: the shape asked of each answer, if any.")


class JobSummary(BaseModel):
    id: int
    name: str
    status: JobStatus
    provider: str
    endpoint: str
    model: str
    progress: float = Field(
        ge=0, le=1, description="Share of requests answered: with a result, or reported done by the provider."
    )
    counts: JobCounts
    cost: JobCost
    created_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    links: JobLinks


class JobDetail(JobSummary):
    description: str
    phase: str = Field(description="What the job is doing now, in words.")
    time_left_seconds: int | None = Field(
        description="Until the provider's 24-hour window closes on the latest running batch; null when none runs."
    )
    expected_finish_at: datetime | None = Field(
        description="When the running batches should end at the pace they have kept so far; null until each has "
        "answered some requests (and while requests wait to be sent)."
    )
    deadline_at: datetime | None = Field(
        description="When the provider's 24-hour window closes on the latest running batch (what has not run by "
        "then is sent again); null when none runs."
    )
    recipe: Recipe = Field(description="What was asked: the model, its settings and, for a CSV, the prompts.")
    max_tokens: int | None
    temperature: float | None
    max_retries: int
    metadata: dict[str, Any]
    tokens: JobTokens
    last_error: str | None
    source: dict[str, Any] | None = Field(
        description="Where the requests came from (file name, format, CSV columns and template)."
    )
    updated_at: datetime
    batches: list[BatchOut]


class JobList(BaseModel):
    data: list[JobSummary]
    page: int
    per_page: int
    total: int
    pages: int
    next: str | None = Field(description="The next page's URL; null on the last page.")
    previous: str | None


class AddedOut(BaseModel):
    added: int
    total_requests: int = Field(description="The job's requests now.")


class RetryOut(BaseModel):
    retried: int = Field(description="How many failed requests are sent again.")
    job: JobDetail


class ResendOut(BaseModel):
    resent: int = Field(description="How many cancelled requests are sent again.")
    job: JobDetail


def _links(job: BatchJob) -> JobLinks:
    def link(endpoint: str) -> str:
        return url_for(f"api.{endpoint}", job_id=job.id)

    return JobLinks(
        self=link("get_job"),
        requests=link("list_requests"),
        responses=link("list_responses"),
        events=link("list_events"),
        results=link("download_results"),
    )


def _summary_fields(job: BatchJob, at_provider: int) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "provider": job.provider,
        "endpoint": job.endpoint,
        "model": job.model,
        "progress": round(job.answered_share(at_provider), 4),
        "counts": JobCounts(
            total=job.total_requests,
            pending=job.pending_requests,
            in_flight=job.in_flight_requests,
            succeeded=job.succeeded_requests,
            failed=job.failed_requests,
            cancelled=job.cancelled_requests,
            finished=job.finished_requests,
            answered_at_provider=job.answered(at_provider) - job.finished_requests,
        ),
        "cost": JobCost(estimated=job.estimated_cost, actual=job.actual_cost or Decimal(0)),
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "completed_at": job.completed_at,
        "links": _links(job),
    }


def job_summary(job: BatchJob, at_provider: int = 0) -> JobSummary:
    return JobSummary(**_summary_fields(job, at_provider))


def job_detail(job: BatchJob) -> JobDetail:
    timing = queries.job_timing(job)
    left = timing.time_left()
    return JobDetail(
        **_summary_fields(job, queries.answered_at_provider([job.id]).get(job.id, 0)),
        description=job.description,
        phase=queries.job_phase(job),
        time_left_seconds=max(0, int(left.total_seconds())) if left is not None else None,
        expected_finish_at=timing.expected,
        deadline_at=timing.deadline,
        recipe=Recipe.model_validate(queries.job_recipe(job)),
        max_tokens=job.max_tokens,
        temperature=job.temperature,
        max_retries=job.max_retries,
        metadata=job.meta or {},
        tokens=JobTokens(
            prompt=job.prompt_tokens,
            completion=job.completion_tokens,
            cached=job.cached_tokens,
            reasoning=job.reasoning_tokens,
            estimated_prompt=job.estimated_tokens,
        ),
        last_error=job.last_error,
        source=job.source,
        updated_at=job.updated_at,
        batches=[batch_out(batch) for batch in job.batches],
    )


def batch_out(batch: ProviderBatch) -> BatchOut:
    counts = BatchCounts(total=batch.counts_total, completed=batch.counts_completed, failed=batch.counts_failed)
    return BatchOut.model_validate({**_columns(batch, BatchOut, exclude={"counts"}), "counts": counts})


def _columns(row: Any, model: type[BaseModel], exclude: set[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in model.model_fields if name not in exclude}


def job_list(page, link) -> JobList:
    """A Flask-SQLAlchemy Pagination as a JobList; ``link(page)`` is the URL of another page."""
    at_provider = queries.answered_at_provider(job.id for job in page.items if job.is_active)
    return JobList(
        data=[job_summary(job, at_provider.get(job.id, 0)) for job in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total or 0,
        pages=page.pages,
        next=link(page.next_num) if page.has_next else None,
        previous=link(page.prev_num) if page.has_prev and page.prev_num <= page.pages else None,
    )


# --- requests, responses, events ---------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int


class ResponseOut(BaseModel):
    id: int
    request_id: int
    custom_id: str
    succeeded: bool
    status_code: int | None = Field(
        description="The provider's HTTP status for the request; null when it failed before reaching the model."
    )
    body: dict[str, Any] | None
    output_text: str | None = Field(description="The generated text, extracted from the body.")
    error_code: str | None
    error: str | None
    usage: Usage
    provider_request_id: str | None
    created_at: datetime


class RequestOut(BaseModel):
    id: int
    custom_id: str
    status: RequestStatus
    body: dict[str, Any]
    error_code: str | None
    error: str | None
    retry_count: int
    source_line: int | None = Field(description="The line (JSONL) or row (CSV) of the uploaded file.")
    estimated_tokens: int
    copy_of_id: int | None = Field(
        description="Sent once (send_duplicates_once): the request with the same body whose answer this one takes; "
        "its response is a copy, with zero tokens."
    )
    response: ResponseOut | None


class EventOut(BaseModel):
    id: int
    kind: EventKind
    message: str
    data: dict[str, Any] | None
    actor: str
    created_at: datetime


class CursorPage(BaseModel):
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")
    next: str | None = Field(description="The next page's URL; null on the last page.")


class RequestList(CursorPage):
    data: list[RequestOut]


class ResponseList(CursorPage):
    data: list[ResponseOut]


class EventList(CursorPage):
    data: list[EventOut]


def response_out(response: BatchResponse, custom_id: str) -> ResponseOut:
    usage = Usage.model_validate(_columns(response, Usage, exclude=set()))
    return ResponseOut.model_validate(
        {**_columns(response, ResponseOut, exclude={"custom_id", "usage"}), "custom_id": custom_id, "usage": usage}
    )


def request_out(request: BatchRequest, response: BatchResponse | None) -> RequestOut:
    fields = _columns(request, RequestOut, exclude={"response"})
    return RequestOut(**fields, response=response_out(response, request.custom_id) if response else None)


def event_out(event: JobEvent) -> EventOut:
    return EventOut.model_validate(_columns(event, EventOut, exclude=set()))


# --- files and statistics ----------------------------------------------------------------------------------


class LineProblemOut(BaseModel):
    line: int = Field(description="The line (JSONL) or data row (CSV, 1 = first row after the header).")
    code: str
    message: str
    custom_id: str | None


class UploadReportOut(BaseModel):
    added: int
    skipped: int = Field(description="Invalid lines left out (only with skip_invalid).")
    problem_count: int
    problems: list[LineProblemOut] = Field(description="The first 1,000 problems.")
    empty_rows: int = Field(description="Tables: rows whose placeholders are all empty (they ask about nothing).")
    empty_row_numbers: list[int] = Field(description="The first 1,000 of them (1 = the first row after the header).")
    skipped_empty: int = Field(description="Of them, those left out (with skip_empty).")
    repeated_rows: int = Field(
        description="Rows whose request repeats an earlier row's (a preview counts them; an upload with "
        "send_duplicates_once stores them as copies)."
    )
    repeated_row_numbers: list[int] = Field(description="The first 1,000 of them.")
    copies: int = Field(description="Requests stored as copies: not sent, they take the first one's answer.")


class JobFromFileOut(BaseModel):
    job: JobDetail
    report: UploadReportOut


class CsvInfoOut(BaseModel):
    format: Literal["csv", "xlsx"]
    encoding: str = Field(description="CSV: how the text was read; empty for a workbook.")
    delimiter: str = Field(description="CSV: the cell separator; empty for a workbook.")
    sheet: str | None = Field(description="A workbook: the sheet read.")
    sheets: list[str] = Field(description="A workbook: all its sheets, in order (choose one with `sheet`).")
    columns: list[str]
    row_count: int
    rows: list[list[str]] = Field(description="The first rows, as read.")
    notes: list[str] = Field(
        description="Names made here for columns the header left without a name (`column_1`, after the position: "
        "the index column of a pandas export) or named twice (`name_2`)."
    )


class RenderedRequest(BaseModel):
    custom_id: str
    body: dict[str, Any]


class CsvPreviewOut(BaseModel):
    file: CsvInfoOut
    requests: list[RenderedRequest] = Field(
        description="The first requests the template makes (empty without a template)."
    )
    request_count: int | None = Field(description="The requests the file would store (one per row kept).")
    sent_count: int | None = Field(
        description="Of them, the requests sent to the provider (fewer with send_duplicates_once)."
    )
    estimated_prompt_tokens: int | None
    estimated_output_tokens: int | None
    estimated_cost: Money | None
    report: UploadReportOut | None = Field(description="Rows that would be rejected.")


class UsageRow(BaseModel):
    key: str = Field(description="The model, or the day (YYYY-MM-DD).")
    jobs: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Money


class RequestTotals(BaseModel):
    total: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None = Field(description="succeeded / (succeeded + failed); null before any result.")


class OverviewOut(BaseModel):
    jobs: int
    jobs_by_status: dict[str, int]
    requests: RequestTotals
    by_model: list[UsageRow]
    by_day: list[UsageRow]


def report_out(report: UploadReport) -> UploadReportOut:
    return UploadReportOut.model_validate(report.as_dict())


def csv_preview_out(info, rendered: dict | None) -> CsvPreviewOut:
    file = CsvInfoOut(
        format=info.format,
        sheet=info.sheet,
        sheets=info.sheets,
        encoding=info.encoding,
        delimiter=info.delimiter,
        columns=info.columns,
        row_count=info.row_count,
        rows=info.preview,
        notes=info.notes,
    )
    empty: dict[str, Any] = {
        "requests": [],
        "request_count": None,
        "sent_count": None,
        "estimated_prompt_tokens": None,
        "estimated_output_tokens": None,
        "estimated_cost": None,
        "report": None,
    }
    return CsvPreviewOut.model_validate({"file": file, **(rendered or empty)})


# --- models ------------------------------------------------------------------------------------------------


class BatchPrice(BaseModel):
    """US dollars per million tokens at the batch price (the price table's rate with its batch discount)."""

    input: Money
    cached_input: Money
    output: Money
    cache_write: Money = Field(
        description="Input written to the prompt cache (Anthropic's 5-minute cache); the input price elsewhere."
    )
    currency: Literal["USD"] = "USD"


class ModelOut(BaseModel):
    id: str = Field(description="The name a job's `model` takes.")
    batch_price: BatchPrice | None = Field(description="null when the price table has no price for the model.")
    priced: bool = Field(description="The price table names the model (its own entry, or a dated version of one).")
    listed: bool = Field(description="The provider's own model list has it.")


class ModelList(BaseModel):
    provider: str
    provider_listed: bool = Field(
        description="false when the provider gave no model list (it has none, or could not be reached): "
        "the price table's models alone are listed."
    )
    data: list[ModelOut] = Field(description="By name. A job may use another model only when it confirms it.")


def model_list(found: Catalog) -> ModelList:
    return ModelList(
        provider=found.provider,
        provider_listed=found.provider_listed,
        data=[
            ModelOut(
                id=option.name,
                batch_price=BatchPrice(**asdict(option.batch_price)) if option.batch_price else None,
                priced=option.priced,
                listed=option.listed,
            )
            for option in found.options
        ],
    )
