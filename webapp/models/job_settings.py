"""A job's settings, each defined once (type, default, bounds, label, help): the model, the API schema, the form,
the template and the service all read them from here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One setting of a job. A number lies within ``minimum`` and ``maximum``; text has that many characters."""

    name: str
    label: str
    kind: type  # int, float or str
    help: str = ""
    default: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    required: bool = False
    missing: str = ""  # what to say when a required setting is left out
    step: float | None = None  # the step a form's number field offers

    @property
    def max_length(self) -> int:
        """The longest a text setting may be (a column's length)."""
        if self.kind is not str or self.maximum is None:
            raise TypeError(f"{self.name} is not text with a longest length")
        return int(self.maximum)

    @property
    def missing_message(self) -> str:
        return self.missing or f"{self.label} is required"

    @property
    def range_message(self) -> str:
        if self.kind is str:
            return f"The {self.label.lower()} can be at most {self.maximum:,} characters"
        return f"{self.label} must be between {self.minimum:,} and {self.maximum:,}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit this setting; None when it does (None fits a setting that is not required)."""
        blank = value is None or (self.required and isinstance(value, str) and not value.strip())
        if blank:
            return self.missing_message if self.required else None
        if not self._of_kind(value):
            return f"{self.label} must be {KIND_WORDS[self.kind]}"
        size = len(value) if isinstance(value, str) else value
        if (self.minimum is not None and size < self.minimum) or (self.maximum is not None and size > self.maximum):
            return self.range_message
        return None

    def _of_kind(self, value: Any) -> bool:
        if isinstance(value, bool):  # a bool is an int to Python, never a number of tokens or tries
            return False
        if self.kind is float:
            return isinstance(value, int | float) and math.isfinite(value)
        return isinstance(value, self.kind)


KIND_WORDS = {int: "a whole number", float: "a number", str: "text"}

NAME = Setting("name", "Name", str, minimum=1, maximum=200, required=True, missing="Give the job a name")
DESCRIPTION = Setting("description", "Description", str, default="", maximum=10_000)
MODEL = Setting(
    "model",
    "Model",
    str,
    help="The model every request uses, e.g. gpt-4o-mini.",
    minimum=1,
    maximum=100,
    required=True,
    missing="Name the model, e.g. gpt-4o-mini",
)
MAX_TOKENS = Setting(
    "max_tokens",
    "Max output tokens",
    int,
    help="Longest answer allowed, in tokens; added to requests that set no limit of their own.",
    minimum=1,
    maximum=1_000_000,
)
TEMPERATURE = Setting(
    "temperature",
    "Temperature",
    float,
    help="0 is most predictable, 2 most varied; added to requests that set none.",
    minimum=0,
    maximum=2,
    step=0.1,
)
MAX_RETRIES = Setting(
    "max_retries",
    "Retries per failed request",
    int,
    help="How often a request that failed for a passing reason (5xx, 429, expired) is sent again automatically.",
    default=3,
    minimum=0,
    maximum=10,
    required=True,
    missing="Say how often a failed request is retried (0 for never)",
)
JOB_SETTINGS = {setting.name: setting for setting in (NAME, DESCRIPTION, MODEL, MAX_TOKENS, TEMPERATURE, MAX_RETRIES)}
