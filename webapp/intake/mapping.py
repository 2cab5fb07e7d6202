"""How a table's rows become requests: the prompt template, system prompt, id column and JSON schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from webapp import error_words, json_input
from webapp.intake.csv_files import fail
from webapp.models import BatchJob

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@dataclass(frozen=True)
class Mapping:
    """How rows become requests: ``Classify this review: {{ Text }}``, optional system prompt, id column, schema."""

    template: str
    system_prompt: str = ""
    id_column: str = ""
    json_schema: dict | None = None


def check_mapping(mapping: Mapping, columns: list[str]) -> list[dict]:
    """Field errors in a mapping: unknown columns in the template, bad id column, bad JSON schema."""
    problems = []
    if not mapping.template.strip():
        problems.append({"field": "template", "message": "the prompt template is empty"})
    known = set(columns)
    for field, text in (("template", mapping.template), ("system_prompt", mapping.system_prompt)):
        unknown = [name for name in PLACEHOLDER.findall(text) if name not in known]
        if unknown:
            problems.append(
                {
                    "field": field,
                    "message": f"no column named {', '.join(map(repr, unknown))}; the columns are {', '.join(columns)}",
                }
            )
    if mapping.id_column and mapping.id_column not in known:
        problems.append({"field": "id_column", "message": f"no column named {mapping.id_column!r}"})
    if mapping.json_schema is not None:
        problems += _schema_problems(mapping.json_schema)
    return problems


def parse_schema(text: str) -> dict | None:
    """The JSON schema typed in a form; None when blank. Raises ValidationFailed on bad JSON, or JSON nested
    deeper than json_input.MAX_DEPTH (which jsonschema would recurse into)."""
    if not text.strip():
        return None
    try:
        schema = json_input.loads(text)
    except json_input.JsonRefused as exc:
        raise fail("json_schema", f"the JSON schema is refused: {exc.reason}") from None
    if not isinstance(schema, dict):
        raise fail("json_schema", "the JSON schema must be a JSON object")
    return schema


def _schema_problems(schema: dict) -> list[dict]:
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [{"field": "json_schema", "message": error_words.schema_error(exc)}]
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        return [{"field": "json_schema", "message": "the schema must describe an object with properties"}]
    return []


def render(template: str, row: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: row.get(m.group(1), ""), template)


def request_body(job: BatchJob, mapping: Mapping, row: dict[str, str]) -> dict:
    """The request body for one row, in the shape of the job's endpoint."""
    prompt = render(mapping.template, row)
    system = render(mapping.system_prompt, row).strip()
    if job.endpoint == "/v1/chat/completions":
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body: dict[str, Any] = {"model": job.model, "messages": messages}
        if mapping.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": mapping.json_schema, "strict": False},
            }
        return body
    if job.endpoint == "/v1/responses":
        body = {"model": job.model, "input": prompt}
        if system:
            body["instructions"] = system
        if mapping.json_schema:
            body["text"] = {"format": {"type": "json_schema", "name": "output", "schema": mapping.json_schema}}
        return body
    if job.endpoint == "/v1/completions":
        return {"model": job.model, "prompt": f"{system}\n\n{prompt}" if system else prompt}
    return {"model": job.model, "input": prompt}
