"""Request shapes of the API (Pydantic v2): job fields, request lines, query strings, path ids, upload forms."""

import json
from typing import Annotated, Any, Literal

from flask import request
from flask_openapi3 import FileStorage as FileField
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import FileStorage

from webapp.intake import mapping as table_mapping
from webapp.intake.requests import MAX_CUSTOM_ID
from webapp.json_input import unstorable
from webapp.models import DEFAULT_ENDPOINT, ENDPOINTS, JobStatus, RequestStatus
from webapp.models.base import MAX_BIG_ID, MAX_ID
from webapp.models.job_settings import DESCRIPTION, MAX_RETRIES, MAX_TOKENS, MODEL, NAME, TEMPERATURE
from webapp.services.catalog import CONFIRM_FIELD
from webapp.services.queries import MAX_PAGE, MAX_SEARCH

MAX_LIMIT = 500
METADATA_MAX_BYTES = 16 * 1024
MAX_LINES_PER_CALL = 100_000


def _storable(value: Any) -> Any:
    """Refuse what PostgreSQL cannot store (NUL, lone surrogates, NaN, integers past 64 bits) as a field error,
    not a server error."""
    if problem := unstorable(value):
        raise PydanticCustomError("unstorable_value", problem)
    return value


def _small_metadata(value: dict) -> dict:
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > METADATA_MAX_BYTES:
        raise PydanticCustomError("too_large", f"metadata must be at most {METADATA_MAX_BYTES // 1024} KB as JSON")
    return value


def _length(max_length: int, min_length: int = 0, strip: bool = False) -> StringConstraints:
    return StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length)


STORABLE = AfterValidator(_storable)


def _not_null_default(schema: dict) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> Any:
    """A field that may be left out but not sent as null (its schema shows no null default)."""
    return Field(None, json_schema_extra=_not_null_default, **kwargs)


# Text fields: their length, and nothing PostgreSQL cannot store.
Name = Annotated[str, _length(NAME.max_length, 1, strip=True), STORABLE]
Description = Annotated[str, _length(DESCRIPTION.max_length), STORABLE]
ModelName = Annotated[str, _length(MODEL.max_length, 1, strip=True), STORABLE]
SearchText = Annotated[str, _length(MAX_SEARCH), STORABLE]
CustomIdPrefix = Annotated[str, _length(MAX_CUSTOM_ID), STORABLE]
LongText = Annotated[str, _length(100_000), STORABLE]
ColumnName = Annotated[str, _length(200), STORABLE]
Provider = Literal["openai", "anthropic", "simulator", "simulator-anthropic"]
Endpoint = Literal[ENDPOINTS]  # type: ignore[valid-type]
# Each setting's bounds from its one definition (webapp/models/job_settings.py), which the service checks too.
MaxTokens = Annotated[int, Field(ge=MAX_TOKENS.minimum, le=MAX_TOKENS.maximum)]
Temperature = Annotated[float, Field(ge=TEMPERATURE.minimum, le=TEMPERATURE.maximum)]
MaxRetries = Annotated[int, Field(ge=MAX_RETRIES.minimum, le=MAX_RETRIES.maximum)]
CONFIRMATION = (
    "true uses a model that neither the price table nor the provider's model list knows (without it, such a model "
    "is refused with 422, code `unknown_model`: a typo would make every request fail)."
)
Metadata = Annotated[dict[str, Any], AfterValidator(_storable), AfterValidator(_small_metadata)]
Cursor = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_BIG_ID,
        description="Return items whose id is greater than this (the previous page's `next_after`).",
    ),
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")]


class Body(BaseModel):
    """A JSON body, strict: unknown fields are errors (a typo must not pass silently) and types are not coerced."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Query(BaseModel):
    """A query string: optional parameters are left out, never null; unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")


class JobCreate(Body):
    name: Name
    description: Description = ""
    provider: Provider | None = Field(
        None,
        description="Default: `openai` when its API key is configured, else `anthropic` when its key is, else the "
        "built-in `simulator` (`simulator-anthropic` is the simulator speaking Anthropic's API). Anthropic runs "
        "`/v1/chat/completions` jobs only.",
    )
    endpoint: Endpoint = DEFAULT_ENDPOINT
    model: ModelName = Field(
        description=MODEL.help + " `GET /api/v1/models` lists the known ones; another needs `allow_unknown_model`."
    )
    allow_unknown_model: bool = Field(False, description=CONFIRMATION)
    max_tokens: MaxTokens | None = Field(MAX_TOKENS.default, description=MAX_TOKENS.help)
    temperature: Temperature | None = Field(TEMPERATURE.default, description=TEMPERATURE.help)
    max_retries: MaxRetries = Field(MAX_RETRIES.default, description=MAX_RETRIES.help)
    metadata: Metadata = Field(default_factory=dict, description="Your own JSON object, kept with the job.")

    def fields(self) -> dict[str, Any]:
        """The job's fields as the service names them."""
        data = self.model_dump(exclude={"metadata", CONFIRM_FIELD}, exclude_none=True)
        return {**data, "meta": self.metadata}


class JobUpdate(Body):
    """Fields left out keep their value. Settings (provider to max_retries) change only while the job is a draft."""

    name: Name = optional()
    description: Description = optional()
    metadata: Metadata = optional()
    provider: Provider = optional()
    endpoint: Endpoint = optional()
    model: ModelName = optional(description=MODEL.help)
    allow_unknown_model: bool = Field(False, description=CONFIRMATION)
    max_tokens: MaxTokens | None = optional(description=MAX_TOKENS.help + " null removes the limit.")
    temperature: Temperature | None = optional(description=TEMPERATURE.help + " null removes the setting.")
    max_retries: MaxRetries = optional(description=MAX_RETRIES.help)

    @field_validator("name", "description", "metadata", "provider", "endpoint", "model", "max_retries", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("not_null", "may be left out but not null")
        return value

    def fields(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True, exclude={CONFIRM_FIELD})
        if "metadata" in data:
            data["meta"] = data.pop("metadata")
        return data


class RequestLine(Body):
    """One request: `{custom_id, body}`, or a full batch line with `method` and `url`."""

    custom_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CUSTOM_ID)]
    body: dict[str, Any] = Field(description="The request body for the job's endpoint; `model` defaults to the job's.")
    method: Literal["POST"] = optional()
    url: Endpoint = optional(description="Must be the job's endpoint.")

    def line(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class RequestLines(RootModel[Annotated[list[RequestLine], Field(min_length=1, max_length=MAX_LINES_PER_CALL)]]):
    """Requests added together: all of them or, when one is invalid, none. The view reads them one at a time as
    the body streams in (``http.streamed_items``); this model documents the whole."""


class JobPath(BaseModel):
    job_id: int = Field(ge=1, le=MAX_ID, description="The job's id.")


class RequestPath(JobPath):
    request_id: int = Field(ge=1, le=MAX_BIG_ID, description="The request's id.")


class JobsQuery(Query):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(20, ge=1, le=100)
    status: JobStatus = optional()
    search: SearchText = optional(description="Part of the job's name, case-insensitive.")


class RequestsQuery(Query):
    status: RequestStatus = optional()
    custom_id: CustomIdPrefix = optional(description="Requests whose custom_id starts with this.")
    after: Cursor = optional()
    limit: Limit = 50


class ResponsesQuery(Query):
    succeeded: bool = optional(description="true: successful responses only; false: failures only.")
    after: Cursor = optional()
    limit: Limit = 50


class EventsQuery(Query):
    after: Annotated[int, Field(ge=0, le=MAX_ID)] = optional(description="The previous page's `next_after`.")
    limit: Limit = 100


class ResultsQuery(Query):
    format: Literal["jsonl", "csv", "xlsx"] = Field(
        "jsonl",
        description="jsonl: OpenAI's batch output lines; csv: your table's columns followed by the results; xlsx: "
        "the same as an Excel workbook, numbers as numbers.",
    )
    failed_only: bool = False


class ModelsQuery(Query):
    provider: Provider = optional(
        description="Default: the configured one (`openai` with its key, else `anthropic` with its key, else "
        "`simulator`)."
    )


class OverviewQuery(Query):
    days: int = Field(30, ge=1, le=3660, description="How many days `by_day` covers.")


def _is_file(value: Any) -> Any:
    if not isinstance(value, FileStorage):
        raise PydanticCustomError("file_required", "send a file in the multipart field 'file'")
    return value


UploadedFile = Annotated[FileField, AfterValidator(_is_file)]
TEXT_FIELDS = ("template", "system_prompt", "id_column", "json_schema", "sheet", "name", "description", "model")


class CsvFields(BaseModel):
    """How CSV rows become requests; text fields are taken exactly as sent."""

    template: LongText | None = Field(
        None, description="The prompt, e.g. `Classify: {{ Text }}` (`{{ column }}` inserts a cell). Required for CSV."
    )
    system_prompt: LongText = ""
    id_column: ColumnName = Field("", description="The column whose values become custom_id (default: row-N).")
    json_schema: LongText = Field("", description="A JSON schema (as text) for structured output.")
    sheet: ColumnName = Field("", description="An Excel workbook's sheet to read (default: the first).")

    @model_validator(mode="before")
    @classmethod
    def _raw_text(cls, data: Any) -> Any:
        # flask-openapi3 JSON-decodes every form field ("42" -> 42, '"x"' -> "x"); text is read back as sent.
        if isinstance(data, dict):
            texts = [name for name in TEXT_FIELDS if name in cls.model_fields and name in request.form]
            data = {**data, **{name: request.form[name] for name in texts}}
        return data

    def mapping(self) -> table_mapping.Mapping | None:
        """The CSV mapping, None without a template; raises ValidationFailed when the schema is not JSON."""
        schema = table_mapping.parse_schema(self.json_schema)
        if not self.template or not self.template.strip():
            return None
        return table_mapping.Mapping(self.template, self.system_prompt, self.id_column.strip(), schema)


class RowOptions(BaseModel):
    skip_empty: bool = Field(
        False, description="Tables: leave out the rows whose placeholders are all empty (counted and listed)."
    )
    send_duplicates_once: bool = Field(
        False,
        description="Send each distinct request once: the rows that repeat one are stored as its copies (each "
        "with its own custom_id and row) and take its answer; tokens and cost are counted once.",
    )


class UploadForm(CsvFields, RowOptions):
    file: UploadedFile
    format: Literal["jsonl", "csv", "xlsx"] | None = Field(
        None,
        description="Default: an Excel workbook by its bytes (whatever its name), else from the file name, the "
        "content type, or the first bytes (`{` starts JSONL).",
    )
    skip_invalid: bool = Field(
        False, description="Store the valid lines and report the others, instead of storing nothing."
    )


class PreviewForm(CsvFields, RowOptions):
    file: UploadedFile
    limit: int = Field(3, ge=1, le=20, description="How many rendered requests to show.")


class JobFromFileForm(UploadForm):
    """A new job's settings (as ``JobCreate``, without metadata: add it with PUT) and its file, in one form."""

    name: Name
    description: Description = ""
    provider: Provider | None = Field(None, description="Default: as for `POST /jobs/`.")
    endpoint: Endpoint = DEFAULT_ENDPOINT
    model: ModelName = Field(description=MODEL.help)
    allow_unknown_model: bool = Field(False, description=CONFIRMATION)
    max_tokens: MaxTokens | None = Field(MAX_TOKENS.default, description=MAX_TOKENS.help)
    temperature: Temperature | None = Field(TEMPERATURE.default, description=TEMPERATURE.help)
    max_retries: MaxRetries = Field(MAX_RETRIES.default, description=MAX_RETRIES.help)

    def settings(self) -> dict[str, Any]:
        """The job's fields as the service names them."""
        names = ("name", "description", "provider", "endpoint", "model", "max_tokens", "temperature", "max_retries")
        return {name: value for name in names if (value := getattr(self, name)) is not None}
