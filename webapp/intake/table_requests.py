"""A table's rows rendered through a mapping into checked request rows, and the preview of what they cost."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson

from webapp.errors import ValidationFailed
from webapp.intake import requests as request_lines
from webapp.intake import tables
from webapp.intake.mapping import PLACEHOLDER, Mapping, check_mapping, request_body
from webapp.intake.requests import UploadReport
from webapp.intake.tables import TableInfo
from webapp.models import BatchJob
from webapp.services.pricing import price_table


def require_usable(mapping: Mapping, info: TableInfo) -> None:
    """Raises ValidationFailed naming each field of the mapping that does not fit the table."""
    problems = check_mapping(mapping, info.columns)
    if problems:
        raise ValidationFailed("the mapping has problems", details=problems)


def request_rows(
    job: BatchJob, path: Path, info: TableInfo, mapping: Mapping, report: UploadReport, *, skip_empty: bool = False
) -> Iterator[dict]:
    """The checked request row of each data row; each row that cannot become one is noted in ``report``, as is
    each row whose placeholders are all empty (left out with ``skip_empty``: it would ask about nothing)."""
    validator = request_lines.RequestValidator(job, request_lines.max_request_bytes())
    width = len(info.columns)
    placeholders = set(PLACEHOLDER.findall(mapping.template)) | set(PLACEHOLDER.findall(mapping.system_prompt))
    for found in tables.data_rows(path, info):
        number, cells = found.number, found.texts
        # A short row is padded; cells past the header are dropped.
        row = dict(zip(info.columns, cells + [""] * (width - len(cells)), strict=False))
        if placeholders and not any(row.get(name, "").strip() for name in placeholders):
            report.note_empty(number)
            if skip_empty:
                report.skipped_empty += 1
                continue
        custom_id = row.get(mapping.id_column, "").strip() if mapping.id_column else f"row-{number}"
        try:
            if len(cells) > width:
                raise request_lines.InvalidLine(
                    "extra_cells", f"the row has {len(cells)} cells but the header names {width}"
                )
            checked = validator.check({"custom_id": custom_id, "body": request_body(job, mapping, row)}, number)
        except request_lines.InvalidLine as exc:
            report.note(request_lines.LineProblem(number, exc.code, exc.message, exc.custom_id or custom_id or None))
            continue
        checked["source_row"] = found.values + [""] * (width - len(found.values))
        yield checked


def preview(
    job: BatchJob,
    path: Path,
    info: TableInfo,
    mapping: Mapping,
    limit: int = 3,
    *,
    skip_empty: bool = False,
    send_once: bool = False,
) -> dict:
    """The first rendered requests and the token and cost estimate for the whole file: its rows with every
    placeholder empty and those that repeat another row's prompt counted, and with ``send_once`` only the
    distinct prompts priced (the repeats take the first one's answer)."""
    require_usable(mapping, info)
    report = UploadReport()
    requests: list[dict] = []
    tokens = output = count = sent = 0
    seen: set[bytes] = set()  # 8 bytes of a hash per distinct prompt
    for row in request_rows(job, path, info, mapping, report, skip_empty=skip_empty):
        count += 1
        digest = hashlib.blake2b(orjson.dumps(row["body"]), digest_size=8).digest()
        if digest in seen:
            report.note_repeated(row["source_line"])
            if send_once:
                continue
        seen.add(digest)
        sent += 1
        tokens += row["estimated_tokens"]
        output += request_lines.estimate_output_tokens(row["body"], job.endpoint)
        if len(requests) < limit:
            requests.append({"custom_id": row["custom_id"], "body": row["body"]})
    cost = price_table().cost(job.model, tokens, output)
    return {
        "requests": requests,
        "request_count": count,
        "sent_count": sent,
        "estimated_prompt_tokens": tokens,
        "estimated_output_tokens": output,
        "estimated_cost": None if cost is None else Decimal(cost),
        "report": report.as_dict(),
    }


def source_of(filename: str, info: TableInfo, mapping: Mapping) -> dict:
    """What the job keeps of the table and the mapping (``job.source``), for its page and its exports."""
    return {
        "format": info.format,
        "filename": filename,
        "columns": info.columns,
        **({"sheet": info.sheet} if info.sheet else {"encoding": info.encoding, "delimiter": info.delimiter}),
        "template": mapping.template,
        "system_prompt": mapping.system_prompt,
        "id_column": mapping.id_column,
        "json_schema": mapping.json_schema,
        # JSONB does not keep an object's key order: the schema's fields are kept in order as a list.
        "output_fields": list((mapping.json_schema or {}).get("properties") or {}),
    }
