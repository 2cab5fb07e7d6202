"""Dashboard fixtures: a client that behaves like a browser (CSRF token on every form) and request files."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import sign_in
from webapp.extensions import db
from webapp.models import BatchJob

HTMX = {"HX-Request": "true"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SETTINGS = {
    "name": "Reviews",
    "provider": "simulator",
    "endpoint": "/v1/chat/completions",
    "model": "gpt-4o-mini",
    "max_retries": "3",
}
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Browser:
    """The test client used as a browser uses the dashboard: forms carry the CSRF token, htmx adds its header."""

    def __init__(self, client):
        self.client = client
        self._token: str | None = None

    @property
    def token(self) -> str:
        """The session's CSRF token, read from a form as a browser would ("" when CSRF is switched off)."""
        if self._token is None:
            found = CSRF_INPUT.search(self.client.get("/jobs/new").text)
            self._token = found.group(1) if found else ""
        return self._token

    def get(self, url: str, *, htmx: bool = False, **kwargs):
        return self.client.get(url, headers=self.headers(htmx), **kwargs)

    def post(self, url: str, data: dict | None = None, *, htmx: bool = False, **kwargs):
        return self.client.post(
            url, data={"csrf_token": self.token, **(data or {})}, headers=self.headers(htmx), **kwargs
        )

    @staticmethod
    def headers(htmx: bool) -> dict:
        return {"Accept": BROWSER_ACCEPT, **(HTMX if htmx else {})}

    def new_job(self, file: tuple[bytes, str] | None = None, **fields):
        """POST the new-job form with SETTINGS, ``fields`` and an optional (content, filename) file."""
        data = {**SETTINGS, **fields}
        if file is not None:
            data["file"] = (io.BytesIO(file[0]), file[1])
        return self.post("/jobs/new", data, content_type="multipart/form-data")


@pytest.fixture
def browser(client, admin_user):
    """Signed in as an admin (who sees every job, including those the factories create without owner)."""
    sign_in(client, admin_user)
    return Browser(client)


@pytest.fixture
def csrf_on(app):
    """The real CSRF check, whatever the test configuration says elsewhere."""
    saved = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = saved


def job_count() -> int:
    return db.session.scalar(select(func.count()).select_from(BatchJob))


def csv_file(
    rows: list[list[str]], header=("Id", "Text", "Stars"), delimiter: str = ",", encoding: str = "utf-8"
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


REVIEWS = [
    ["r1", "Great, really great: would buy again", "5"],
    ["r2", "Très bien — mais un peu cher.\nSecond line of the review", "4"],
    ["r3", 'Broke after a week; "quality" my foot', "1"],
]


def chat_line(custom_id: str, text: str, **overrides) -> str:
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    }
    line.update(overrides)
    return json.dumps(line, ensure_ascii=False)


def jsonl_file(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def field_error(page_text: str, name: str) -> str:
    """The error message shown next to field ``name`` ("" when there is none)."""
    match = re.search(rf'<small id="{name}-error" class="field-error">(.*?)</small>', page_text, re.S)
    return match.group(1) if match else ""


def hidden(page_text: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', page_text)
    assert match, f"no hidden field {name}"
    return match.group(1)
