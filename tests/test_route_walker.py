"""Every route and form with hostile values: no answer is a server error, and a refusal (4xx) stores nothing.

The routes are app.url_map's, every rule and method (but the simulator's, which is being rebuilt elsewhere).
Each path argument, query argument and form or JSON field gets each hostile value in turn, the other fields
valid: NUL, CR/LF, deep nesting and, where a field takes a number, numbers past the database's integers; path
arguments also get a path climbing out. 10 MB of text goes to a few representative fields only, and not in the
member's walk, to keep the walk short. The dashboard's fields come from its WTForms forms, the API's from its
OpenAPI document. The walk runs as a visitor, a member and an admin (the API with their tokens); after each
answer the database is read whole, and a 4xx must have left it as it was.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, api_token, sign_in
from tests.dashboard.conftest import CSRF_INPUT, chat_line, jsonl_file
from tests.factories import new_job
from webapp.auth.forms import LoginForm, NewUserForm, PasswordForm, ResetPasswordForm, RoleForm, SetupForm, TokenForm
from webapp.dashboard.forms import JobFilterForm, NewJobForm, RequestFilterForm
from webapp.extensions import db
from webapp.intake import files
from webapp.models import BatchRequest
from webapp.models.base import MAX_BIG_ID, MAX_ID
from webapp.services import accounts

pytestmark = pytest.mark.slow

LONG = "x" * (10 * 1024 * 1024)
DEEP = 100_000  # far past Python's recursion limit, which a recursive parser reaches first
# What a field gets: every field the first group; a field that takes a number (or a choice) the numbers too.
TEXT = {"nul": "a\x00b", "crlf": "/jobs\r\nSet-Cookie: a=b", "deep": "[" * 5000 + "]" * 5000}
TEXT_NUMBERS = {"past_int": str(MAX_ID + 1), "past_bigint": str(MAX_BIG_ID + 1), "huge": "1e23", "negative": "-1"}
JSON = {
    "nul": json.dumps("a\x00b"),
    "crlf": json.dumps("a\r\nb"),
    "deep_array": "[" * DEEP + "]" * DEEP,
    "deep_object": '{"a":' * DEEP + "1" + "}" * DEEP,
    "nested": '{"a":' * 200 + "1" + "}" * 200,
}
JSON_NUMBERS = {
    "past_int": str(MAX_ID + 1),
    "past_bigint": str(MAX_BIG_ID + 1),
    "negative_past_bigint": str(-MAX_BIG_ID - 2),
}
PATH = {  # what a path argument gets, by converter
    "IdConverter": [str(MAX_ID + 1), str(MAX_BIG_ID + 1), "9" * 5000, "0"],
    "BigIdConverter": [str(MAX_BIG_ID + 1), "9" * 5000, "0"],
    "other": ["%00", "a%0D%0Ab", "..%2F..%2Fetc%2Fpasswd", "x" * 5000],
}
# Where nesting past the recursion limit once made a 500 (an API JSON body, an API form field, which flask-openapi3
# decodes as JSON, and the dashboard's JSON schema): the walk covers them, and one test each says so by name.
NESTED = {("json", "deep_array"), ("json", "deep_object"), ("multipart", "deep"), ("json_schema", "deep")}
# (endpoint, field): the fields that also get 10 MB, one of each kind of intake.
LONG_FIELDS = {
    ("dashboard.list_jobs", "q"),
    ("dashboard.new_job", "name"),
    ("auth.login", "email"),
    ("api.create_job", "name"),
    ("api.upload_file", "template"),
    ("api.list_requests", "custom_id"),
}
FREE_TEXT = {"StringField", "TextAreaField", "PasswordField", "EmailField", "SearchField"}
NEW_PASSWORD = "another long password"
SETTINGS = {
    "name": "walked",
    "provider": "simulator",
    "endpoint": "/v1/chat/completions",
    "model": "gpt-4o-mini",
    "max_retries": "1",
}

# The forms the dashboard reads query strings (GET) and bodies (POST) with, by endpoint.
QUERY_FORMS = {
    "dashboard.list_jobs": JobFilterForm,
    "dashboard.list_requests": RequestFilterForm,
    "dashboard.choose_model": NewJobForm,  # the model picker reads the provider and model typed so far
}
BODY_FORMS = {
    "dashboard.new_job": NewJobForm,
    "dashboard.preview_csv": NewJobForm,
    "auth.setup": SetupForm,
    "auth.login": LoginForm,
    "auth.change_password": PasswordForm,
    "auth.tokens": TokenForm,
    "auth.users": NewUserForm,
    "auth.change_role": RoleForm,
    "auth.reset_password": ResetPasswordForm,
}
ACTIONS = {
    "auth.logout",
    "auth.revoke_token",
    "auth.disable_user",
    "auth.enable_user",
    "auth.delete_user",
    "dashboard.change_job",
    "dashboard.delete_job",
}  # buttons: their body is the CSRF token only
ARGS = {"auth.login": ["next"], "dashboard.download_results": ["only"]}  # read with request.args directly
# Valid values for the fields not under attack, by endpoint (forms) or schema (API); FILES add a small file.
BASELINES = {
    "dashboard.new_job": SETTINGS,
    "dashboard.preview_csv": {**SETTINGS, "template": "Echo: {{ Text }}", "filename": "walked.csv"},
    "auth.setup": {"email": "setup@example.com", "password": PASSWORD, "confirm": PASSWORD},
    "auth.login": {"email": "admin@example.com", "password": "not the password"},
    "auth.change_password": {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    "auth.tokens": {"name": "walked", "expires_in_days": "7"},
    "auth.users": {"email": "walked@example.com", "password": PASSWORD, "role": "member"},
    "auth.change_role": {"role": "member"},
    "auth.reset_password": {"password": PASSWORD},
    "JobCreate": {"name": "walked", "model": "gpt-4o-mini"},
    "JobUpdate": {},
    "RequestLine": {"body": {"messages": [{"role": "user", "content": "hi"}]}},
    "UploadForm": {"format": "jsonl"},
    "PreviewForm": {"template": "Echo: {{ Text }}"},
    "JobFromFileForm": {"name": "walked", "model": "gpt-4o-mini", "template": "Echo: {{ Text }}"},
}
FILES = {
    "dashboard.new_job": "walked.jsonl",
    "UploadForm": "walked.jsonl",
    "PreviewForm": "walked.csv",
    "JobFromFileForm": "walked.csv",
}
CSV = b"Id,Text\n1,hello\n"
HOSTILE = "@@hostile@@"
SKIPPED = ("/simulator/", "/static/")  # the simulator is being rebuilt; /static/ is Flask's file server


@dataclass
class Walk:
    """One visitor's walk: sends each variant, reads the database after it, and collects what went wrong."""

    app: object
    client: object
    ids: dict
    spec: dict
    token: str | None = None
    csrf: str = ""
    failures: list = field(default_factory=list)
    sent: int = 0
    with_long: bool = True  # send the 10 MB values of LONG_FIELDS
    turned_away: bool = False  # by the route walked, before it read a field: its other variants are skipped
    unique: count = field(default_factory=count)

    def __post_init__(self):
        self.state = snapshot()
        self.baselines = {
            **BASELINES,
            "dashboard.preview_csv": {**BASELINES["dashboard.preview_csv"], "upload": self.ids["upload"]},
        }

    def hostile_text(self, endpoint: str, name: str, numeric: bool) -> list[tuple[str, str]]:
        """(kind, value) for a query or form field."""
        values = {**TEXT, **(TEXT_NUMBERS if numeric else {})}
        if self.with_long and (endpoint, name) in LONG_FIELDS:
            values["10 MB"] = LONG
        return list(values.items())

    def hostile_json(self, endpoint: str, name: str, numeric: bool) -> list[tuple[str, str]]:
        """(kind, JSON text) for a JSON field."""
        values = {**JSON, **(JSON_NUMBERS if numeric else {})}
        if self.with_long and (endpoint, name) in LONG_FIELDS:
            values["10 MB"] = json.dumps(LONG)
        return list(values.items())

    def schema(self, schema: dict) -> dict:
        """An OpenAPI schema with its reference followed."""
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def form(self, method: str, key: str, **fields) -> dict:
        """The keyword arguments of a form request: the baseline, ``fields``, the CSRF token, the file."""
        data = {**self.baselines.get(key, {}), **fields}
        if method == "GET":
            return {"query_string": data}
        data = {"csrf_token": self.csrf, **with_file(key, data)}
        files = any(isinstance(value, tuple) for value in data.values())
        return {"data": data, "content_type": "multipart/form-data" if files else None}

    def send(self, method: str, url: str, what: str, **kwargs) -> None:
        if self.turned_away:
            return
        if url.startswith("/api/") and self.token:
            kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {self.token}"
        response = self.client.open(url, method=method, **kwargs)
        self.sent += 1
        db.session.remove()  # as at the end of a real request: what was not committed is gone
        state = snapshot()
        where = f"{method} {url[:80]!r} {what}"
        if response.status_code >= 500:
            self.failures.append(f"{where}: {response.status_code}")
        elif response.status_code >= 400 and state != self.state:
            self.failures.append(f"{where}: {response.status_code} but the database changed")
        self.state = state
        self.turned_away = (
            response.status_code == 403
            or response.status_code == 401
            and url.startswith("/api/")
            or response.headers.get("Location", "").startswith(("/login", "/setup"))
        )


def snapshot() -> list:
    """Every row of every table (but when a token was last used, which any call sets), read on the test's
    connection without a session, as one digest per table on PostgreSQL: the walk reads it after each of its
    thousand requests."""
    connection = db.engine  # the connection each test runs in (tests/conftest.py)
    rows = {
        table.name: ", ".join(c.name for c in table.columns if c.name != "last_used_at")
        for table in db.metadata.sorted_tables
    }
    if connection.dialect.name == "postgresql":
        digests = [
            f"(SELECT md5(string_agg(ROW({columns})::text, ',' ORDER BY ROW({columns})::text)) FROM {name})"
            for name, columns in rows.items()
        ]
        return list(connection.exec_driver_sql("SELECT " + ", ".join(digests)).one())
    return [
        connection.exec_driver_sql(f"SELECT {columns} FROM {name} ORDER BY 1").all() for name, columns in rows.items()
    ]


def walk_everything(walk: Walk) -> None:
    for rule in walk.app.url_map.iter_rules():
        if rule.rule.startswith(SKIPPED):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            walk.turned_away = False
            for name, converter in rule._converters.items():
                for value in PATH.get(type(converter).__name__, PATH["other"]):
                    walk.send(method, fill(rule, walk.ids, **{name: value}), f"path {name}", **walk.form(method, ""))
            walk.send(method, fill(rule, walk.ids), "NUL in another field", **walk.form(method, "", x=TEXT["nul"]))
            if rule.endpoint.startswith("api."):
                walk_api_fields(walk, rule, method)
            else:
                walk_form_fields(walk, rule, method)


def walk_form_fields(walk: Walk, rule, method: str) -> None:
    url, endpoint = fill(rule, walk.ids), rule.endpoint
    form = (QUERY_FORMS if method == "GET" else BODY_FORMS).get(endpoint)
    if method != "GET":
        assert form or endpoint in ACTIONS, f"{endpoint}: add its form to BODY_FORMS or it to ACTIONS"
    for name, numeric in form_fields(walk.app, form):
        for kind, value in walk.hostile_text(endpoint, name, numeric):
            walk.send(method, url, f"{name}={kind}", **walk.form(method, endpoint, **{name: value}))
    for name in ARGS.get(endpoint, []):
        for kind, value in walk.hostile_text(endpoint, name, numeric=False):
            sent = walk.form(method, endpoint)
            sent["query_string"] = {name: value}
            walk.send(method, url, f"?{name}={kind}", **sent)


def walk_api_fields(walk: Walk, rule, method: str) -> None:
    operation = walk.spec["paths"][re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)][method.lower()]
    url = fill(rule, walk.ids)
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query":
            name = parameter["name"]
            for kind, value in walk.hostile_text(rule.endpoint, name, takes_number(parameter["schema"])):
                walk.send(method, url, f"{name}={kind}", query_string={name: value})
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        walk_json_body(walk, rule, method, url, walk.schema(content["application/json"]["schema"]))
    if "multipart/form-data" in content:
        schema = walk.schema(content["multipart/form-data"]["schema"])
        for name, prop in schema["properties"].items():
            for kind, value in walk.hostile_text(rule.endpoint, name, takes_number(prop)):
                data = with_file(schema["title"], {**BASELINES[schema["title"]], name: value})
                walk.send(method, url, f"{name}={kind}", data=data, content_type="multipart/form-data")


def walk_json_body(walk: Walk, rule, method: str, url: str, schema: dict) -> None:
    """Each property gets each hostile JSON value; for a list of items (requests), the properties of one item."""
    is_list = schema.get("type") == "array"
    item = walk.schema(schema["items"]) if is_list else schema
    for name, prop in item["properties"].items():
        for kind, raw in walk.hostile_json(rule.endpoint, name, takes_number(prop)):
            body = {**BASELINES[item["title"]], name: HOSTILE}
            if is_list and name != "custom_id":
                body["custom_id"] = f"walked-{next(walk.unique)}"
            sent = json.dumps([body] if is_list else body).replace(json.dumps(HOSTILE), raw)
            walk.send(method, url, f"{name}={kind}", data=sent, content_type="application/json")
    for kind, raw in walk.hostile_json(rule.endpoint, "", numeric=True):
        walk.send(method, url, f"body={kind}", data=raw, content_type="application/json")


def takes_number(schema: dict) -> bool:
    types = {option.get("type") for option in schema.get("anyOf", [schema])}
    return bool(types & {"integer", "number", "boolean"})


def form_fields(app, form) -> list[tuple[str, bool]]:
    """The form's fields (the CSRF token too), each with whether it takes more than free text."""
    if form is None:
        return []
    with app.test_request_context():
        return [(f.name, f.type not in FREE_TEXT) for f in form(formdata=None)]


def with_file(key: str, data: dict) -> dict:
    """``data`` with a small valid file in ``file`` unless the field is under attack (a fresh stream each time)."""
    if key not in FILES or "file" in data:
        return data
    name = FILES[key]
    content = jsonl_file([chat_line("w-1", "hello")]) if name.endswith(".jsonl") else CSV
    return {**data, "file": (io.BytesIO(content), name)}


def fill(rule, ids: dict, **override: str) -> str:
    """The rule's URL with valid ids (and the first choice of an ``any``), some arguments replaced."""

    def argument(match: re.Match) -> str:
        converter, name = match.group(1) or "", match.group(2)
        if name in override:
            return override[name]
        if converter.startswith("any("):
            return converter[4:].split(",")[0].strip()
        return quote(str(ids.get(name, "x")))

    return re.sub(r"<(?:([^<>]*):)?(\w+)>", argument, rule.rule)


@pytest.fixture
def world(app_ctx):
    """A member with a job, an admin with one, a third account the admin's actions aim at, a stored CSV upload."""
    admin = accounts.create_user("admin@example.com", PASSWORD, role="admin")
    member = accounts.create_user("member@example.com", PASSWORD)
    victim = accounts.create_user("victim@example.com", PASSWORD)
    jobs = {user.id: new_job(count=2, owner_id=user.id) for user in (admin, member)}
    upload = files.save_upload(io.BytesIO(CSV), ".csv")
    yield {"admin": admin, "member": member, "victim": victim, "jobs": jobs, "upload": upload}
    files.discard_upload(upload)


def ids_for(user, world: dict) -> dict:
    """Valid values for every path argument: the visitor's job (any job for a visitor), the third account."""
    job = world["jobs"][user.id] if user else next(iter(world["jobs"].values()))
    request_id = db.session.scalar(select(BatchRequest.id).where(BatchRequest.job_id == job.id).limit(1))
    return {
        "job_id": job.id,
        "request_id": request_id,
        "user_id": world["victim"].id,
        "filename": "index.css",
        "token_id": user.tokens[0].id if user else 1,
        "upload": world["upload"],
    }


@pytest.mark.parametrize("role", ["visitor", "member", "admin"])
def test_no_route_answers_hostile_input_with_a_server_error(app, client, world, role):
    user = world.get(role)
    token = None
    if user:
        token = api_token(user)
        sign_in(client, user)
    page = client.get("/account/tokens" if user else "/login").text
    spec = client.get("/api/v1/openapi.json").get_json()
    walk = Walk(
        app,
        client,
        ids_for(user, world),
        spec,
        token=token,
        csrf=CSRF_INPUT.search(page).group(1),
        with_long=role != "member",
    )
    walk_everything(walk)
    assert walk.sent > 150  # the walk did walk
    assert not walk.failures, f"{len(walk.failures)} of {walk.sent}:\n" + "\n".join(walk.failures)


def send_nested(client, world: dict, carrier: str, kind: str):
    """One request with a value nested past the recursion limit in the place NESTED names."""
    admin = world["admin"]
    job_id = world["jobs"][admin.id].id
    auth = {"Authorization": f"Bearer {api_token(admin)}"}
    if carrier == "json":
        body = '{"name": "x", "model": "gpt-4o-mini", "metadata": {"a": ' + JSON[kind] + "}}"
        return client.post("/api/v1/jobs/", data=body, content_type="application/json", headers=auth)
    if carrier == "multipart":
        data = {"file": (io.BytesIO(CSV), "walked.csv"), "template": TEXT[kind]}
        return client.post(f"/api/v1/jobs/{job_id}/files", data=data, headers=auth)
    sign_in(client, admin)
    token = CSRF_INPUT.search(client.get("/jobs/new").text).group(1)
    data = {
        **BASELINES["dashboard.preview_csv"],
        "upload": world["upload"],
        "json_schema": TEXT[kind],
        "csrf_token": token,
        "name": "nested",
    }
    preview = client.post("/jobs/new/preview", data=data)  # htmx swaps only a 2xx: the problem is shown in it
    assert preview.status_code == 200 and "nest" in preview.text
    return client.post("/jobs/new", data=data)


@pytest.mark.parametrize("carrier, kind", sorted(NESTED))
def test_nesting_past_the_recursion_limit_is_refused(client, world, carrier, kind):
    assert 400 <= send_nested(client, world, carrier, kind).status_code < 500
