"""Dashboard forms: a new job with its file and CSV mapping, job actions, and the list filters."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FloatField,
    HiddenField,
    IntegerField,
    SearchField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from webapp.errors import ValidationFailed
from webapp.intake.mapping import Mapping, parse_schema
from webapp.intake.requests import MAX_CUSTOM_ID
from webapp.models import DEFAULT_ENDPOINT, JobStatus, RequestStatus
from webapp.models.base import MAX_BIG_ID
from webapp.models.job_settings import DESCRIPTION, MAX_RETRIES, MAX_TOKENS, MODEL, NAME, TEMPERATURE, Setting
from webapp.providers import LABELS, available_providers
from webapp.services.queries import MAX_PAGE, MAX_SEARCH

ENDPOINTS = [
    SelectChoice("/v1/chat/completions", "Chat completions (/v1/chat/completions)"),
    SelectChoice("/v1/responses", "Responses (/v1/responses)"),
    SelectChoice("/v1/embeddings", "Embeddings (/v1/embeddings)"),
]
SETTINGS = ("name", "description", "provider", "endpoint", "model", "max_tokens", "temperature", "max_retries")
ROW_NUMBER = ""
ROW_LABEL = "Row number (row-1, row-2, …)"
JOB_STATUSES = {status.value for status in JobStatus}
REQUEST_STATUSES = {status.value for status in RequestStatus}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class _Friendly:
    """A number field whose parse error names the field and gives an example, instead of WTForms' wording."""

    example = ""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(f"{self.label.text} must be a number, e.g. {self.example}") from None

    def pre_validate(self, form):
        typed = bool(self.raw_data and self.raw_data[0].strip())  # blank is left to Optional / InputRequired
        if self.process_errors and typed:  # not a number: its range cannot be checked, one message is enough
            raise StopValidation()


class NumberField(_Friendly, FloatField):
    example = "0.7"


class WholeNumberField(_Friendly, IntegerField):
    example = "500"


def _text_field(setting: Setting, field_class=StringField, **kwargs):
    """A text field for a job setting: its label, help, default and bounds (WTForms renders maxlength)."""
    required = [DataRequired(setting.missing_message)] if setting.required else [Optional()]
    options = {"default": setting.default, "description": setting.help, **kwargs}
    return field_class(
        setting.label,
        filters=[_strip],
        validators=[*required, Length(max=setting.maximum, message=setting.range_message)],
        **options,
    )


def _number_field(setting: Setting):
    """A number field for a job setting: its label, help, default and bounds (WTForms renders min and max)."""
    required = InputRequired(setting.missing_message) if setting.required else Optional()
    field_class = WholeNumberField if setting.kind is int else NumberField
    return field_class(
        setting.label,
        default=setting.default,
        description=setting.help,
        validators=[required, NumberRange(min=setting.minimum, max=setting.maximum, message=setting.range_message)],
        render_kw={"step": setting.step} if setting.step else None,
    )


class NewJobForm(FlaskForm):
    """The job's settings, its file, and (for a CSV file) how rows become requests."""

    name = _text_field(NAME)
    description = _text_field(DESCRIPTION, TextAreaField)
    provider = SelectField("Provider")
    endpoint = SelectField("Endpoint", choices=ENDPOINTS, default=DEFAULT_ENDPOINT)
    model = _text_field(MODEL, default="gpt-4o-mini")
    allow_unknown_model = BooleanField("Use this model anyway")
    max_tokens = _number_field(MAX_TOKENS)
    temperature = _number_field(TEMPERATURE)
    max_retries = _number_field(MAX_RETRIES)
    file = FileField("Requests file (CSV, Excel .xlsx or OpenAI batch JSONL)")
    upload = HiddenField()
    filename = HiddenField()
    # The sheets come with the workbook; the service names a sheet the workbook does not have.
    sheet = SelectField("Sheet", choices=[], validate_choice=False)
    skip_invalid = BooleanField("If some lines or rows are invalid, skip them and keep the rest")
    template = TextAreaField("Prompt template")
    system_prompt = TextAreaField("System prompt (optional)")
    # The columns come with the file; check_mapping names an id column the file does not have.
    id_column = SelectField(
        "ID column (optional)", choices=[SelectChoice(ROW_NUMBER, ROW_LABEL)], validate_choice=False
    )
    json_schema = TextAreaField("JSON schema for structured output (optional)")
    skip_empty = BooleanField("Leave out the rows whose placeholders are all empty")
    send_duplicates_once = BooleanField(
        "Send each distinct prompt once, and copy its answer to every row that asked it"
    )

    def row_options(self) -> dict:
        """What the table's options ask of the service (``imports.Options``)."""
        return {"skip_empty": self.skip_empty.data, "send_once": self.send_duplicates_once.data}

    def __init__(self, *args, columns: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider.choices = [SelectChoice(name, LABELS[name]) for name in available_providers()]
        if not self.provider.data:
            self.provider.data = self.provider.choices[0].value
        self.set_columns(columns or [])

    def set_sheets(self, sheets: list[str]) -> None:
        self.sheet.choices = [SelectChoice(name) for name in sheets]

    def set_columns(self, columns: list[str]) -> None:
        self.id_column.choices = [SelectChoice(ROW_NUMBER, ROW_LABEL), *(SelectChoice(name) for name in columns)]

    def job_settings(self) -> dict:
        return {name: self[name].data for name in SETTINGS}

    def mapping(self) -> Mapping:
        """The CSV mapping typed in; raises ValidationFailed (field json_schema) when the schema is not JSON."""
        return Mapping(
            self.template.data or "",
            self.system_prompt.data or "",
            self.id_column.data or "",
            parse_schema(self.json_schema.data or ""),
        )

    def add_errors(self, exc: ValidationFailed, aliases: dict[str, str] | None = None) -> list[str]:
        """Put a service's field errors next to their fields; return the messages no field claims."""
        unclaimed = []
        for detail in exc.details or [{"field": None, "message": exc.message}]:
            field = detail.get("field") or ""
            name = (aliases or {}).get(field, field)
            if name in self._fields and name != "csrf_token":
                if detail["message"] not in self[name].errors:  # a form checked twice says it once
                    self[name].errors = [*self[name].errors, detail["message"]]
            else:
                unclaimed.append(detail["message"])
        return unclaimed


def _status_choices(statuses) -> list[SelectChoice]:
    return [SelectChoice("", "All statuses"), *(SelectChoice(s.value, s.value.replace("_", " ")) for s in statuses)]


class ActionForm(FlaskForm):
    """A button that changes a job: only the CSRF token travels."""


class _QueryForm(FlaskForm):
    """Filters read from the query string: reading changes nothing, so no CSRF token."""

    class Meta:
        csrf = False

    def checked(self):
        """This form, or ValidationFailed (422, as the API answers) when a value in it does not fit."""
        if not self.validate():
            details = [{"field": name, "message": errors[0]} for name, errors in self.errors.items()]
            raise ValidationFailed("; ".join(f"{d['field']}: {d['message']}" for d in details), details=details)
        return self


class JobFilterForm(_QueryForm):
    status = SelectField("Status", choices=_status_choices(JobStatus), validate_choice=False)
    q = SearchField("Search by name", filters=[_strip], validators=[Length(max=MAX_SEARCH)])
    page = IntegerField(
        default=1,
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_PAGE, message=f"must be a page number from 1 to {MAX_PAGE}"),
        ],
    )

    def filters(self) -> dict:
        status = self.status.data if self.status.data in JOB_STATUSES else None
        return {"status": status, "search": self.q.data or None}

    def page_number(self) -> int:
        return self.page.data or 1


class RequestFilterForm(_QueryForm):
    status = SelectField("Status", choices=_status_choices(RequestStatus), validate_choice=False)
    q = SearchField("custom_id starts with", filters=[_strip], validators=[Length(max=MAX_CUSTOM_ID)])
    after = IntegerField(
        validators=[
            Optional(),
            NumberRange(min=0, max=MAX_BIG_ID, message="must be a request id (the next page's link)"),
        ]
    )

    def filters(self) -> dict:
        status = self.status.data if self.status.data in REQUEST_STATUSES else None
        return {"status": status, "search": self.q.data or None, "after": self.after.data}
