"""Who may see and do what, on every dashboard page and API endpoint; rate limits; secrets kept out."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, api_token, sign_in
from tests.factories import chat_body, new_job, run_until_done
from webapp.extensions import db
from webapp.intake import imports
from webapp.models import BatchJob, BatchRequest
from webapp.services import accounts, jobs

PATH_PARAMETER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>")


def job_routes(app, prefix: str) -> list[tuple[str, str]]:
    """(method, path template) of every route under ``prefix`` that names a job."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix) and "job_id" in rule.arguments:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule))
    return sorted(set(routes))


def fill(template: str, job_id: int, request_id: int) -> str:
    values = {"job_id": job_id, "request_id": request_id, "kind": "csv", "action": "submit"}
    return PATH_PARAMETER.sub(lambda m: str(values[m.group(1)]), template)


@pytest.fixture
def owned(app_ctx, member_user):
    """A finished-looking job of ``member_user`` with one request."""
    job = jobs.create_job({"name": "private", "model": "gpt-4o-mini"}, owner_id=member_user.id)
    imports.add_requests(job, [{"custom_id": "secret", "body": chat_body("confidential text")}])
    request_id = db.session.scalar(select(BatchRequest.id).where(BatchRequest.job_id == job.id))
    return job, request_id


@pytest.fixture
def intruder(app_ctx):
    return accounts.create_user("other@example.com", PASSWORD)


def call(client, method: str, path: str, headers: dict | None = None):
    """A well-formed call, so that only who is asking decides the answer."""
    if path.startswith("/api/") and path.endswith(("/files", "/files/preview")):
        return client.open(
            path,
            method=method,
            headers=headers or {},
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(b"Text\nhello\n"), "a.csv"), "template": "{{ Text }}"},
        )
    body = {"json": {}} if method in ("POST", "PUT") and path.startswith("/api/") else {}
    if path.endswith("/requests") and method == "POST":
        body = {"json": [{"custom_id": "z", "body": chat_body("x")}]}
    return client.open(path, method=method, headers=headers or {}, **body)


# --- the dashboard ------------------------------------------------------------------------------------


def test_every_dashboard_page_needs_a_signed_in_user(app, client, owned):
    job, request_id = owned
    pages = [
        ("GET", "/jobs"),
        ("GET", "/jobs/new"),
        ("GET", "/overview"),
        ("GET", "/account/tokens"),
        *((m, fill(p, job.id, request_id)) for m, p in job_routes(app, "/jobs")),
    ]
    app.config["WTF_CSRF_ENABLED"] = False  # the sign-in check, not CSRF, must refuse these
    try:
        for method, path in pages:
            response = call(client, method, path, headers={"Accept": "text/html"})
            assert response.status_code == 302 and "/login" in response.headers["Location"], (method, path)
    finally:
        app.config["WTF_CSRF_ENABLED"] = True
    db.session.refresh(job)
    assert job.status == "draft" and job.deleted_at is None


def test_a_member_cannot_see_or_change_another_members_job(app, client, owned, intruder):
    job, request_id = owned
    sign_in(client, intruder)
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        for method, template in job_routes(app, "/jobs"):
            path = fill(template, job.id, request_id)
            response = call(client, method, path, headers={"Accept": "text/html"})
            assert response.status_code == 404, (method, path, response.status_code)
    finally:
        app.config["WTF_CSRF_ENABLED"] = True
    assert "private" not in client.get("/jobs").text
    assert "confidential" not in client.get("/overview").text
    db.session.refresh(job)
    assert job.status == "draft" and job.deleted_at is None


def test_the_owner_and_an_admin_see_the_job(app, client, owned, member_user, admin_user):
    job, request_id = owned
    for user in (member_user, admin_user):
        sign_in(client, user)
        for method, template in job_routes(app, "/jobs"):
            if method == "GET":
                response = client.get(fill(template, job.id, request_id), headers={"Accept": "text/html"})
                assert response.status_code in (200, 302), (user.email, template, response.status_code)
        assert "private" in client.get("/jobs").text


def test_jobs_created_in_the_dashboard_belong_to_their_creator(client, member_user):
    from tests.dashboard.conftest import Browser

    sign_in(client, member_user)
    browser = Browser(client)
    jsonl = b'{"custom_id": "a", "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}}'
    browser.new_job(file=(jsonl, "requests.jsonl"))
    job = db.session.scalars(select(BatchJob)).one()
    assert job.owner_id == member_user.id
    assert job.events[0].actor == "member@example.com"


# --- the API ------------------------------------------------------------------------------------------


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_every_api_endpoint_refuses_anonymous_and_bad_tokens(app, client, owned, member_user):
    job, request_id = owned
    routes = [
        ("GET", "/api/v1/jobs/"),
        ("POST", "/api/v1/jobs/"),
        ("GET", "/api/v1/jobs/stats/overview"),
        *((m, fill(p, job.id, request_id)) for m, p in job_routes(app, "/api/v1")),
    ]
    revoked, revoked_plain = accounts.create_token(member_user, "revoked")
    accounts.revoke_token(member_user, revoked.id)
    for headers in ({}, bearer("bp_not-a-real-token"), bearer(revoked_plain), {"Authorization": "Basic eDp5"}):
        for method, path in routes:
            response = call(client, method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_session_cookie_is_not_enough_for_the_api(client, member_user):
    sign_in(client, member_user)
    assert client.get("/api/v1/jobs/").status_code == 401


def test_an_expired_token_fails(client, member_user):
    from datetime import datetime, timedelta

    token, plain = accounts.create_token(member_user, "soon", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert client.get("/api/v1/jobs/", headers=bearer(plain)).status_code == 200
    token.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    db.session.commit()
    assert client.get("/api/v1/jobs/", headers=bearer(plain)).status_code == 401


def test_api_tokens_see_only_their_users_jobs(app, client, owned, intruder, member_user, admin_user):
    job, request_id = owned
    other = bearer(api_token(intruder))
    for method, template in job_routes(app, "/api/v1"):
        path = fill(template, job.id, request_id)
        response = call(client, method, path, headers=other)
        assert response.status_code == 404, (method, path, response.status_code)
    assert client.get("/api/v1/jobs/", headers=other).json["data"] == []
    assert client.get("/api/v1/jobs/stats/overview", headers=other).json["jobs"] == 0
    for user in (member_user, admin_user):
        headers = bearer(api_token(user))
        assert client.get(f"/api/v1/jobs/{job.id}", headers=headers).status_code == 200
        assert [j["id"] for j in client.get("/api/v1/jobs/", headers=headers).json["data"]] == [job.id]
    db.session.refresh(job)
    assert job.status == "draft" and job.deleted_at is None


def test_jobs_created_through_the_api_belong_to_the_tokens_user(client, member_user):
    response = client.post(
        "/api/v1/jobs/", json={"name": "mine", "model": "gpt-4o-mini"}, headers=bearer(api_token(member_user))
    )
    job = db.session.get(BatchJob, response.json["id"])
    assert job.owner_id == member_user.id
    assert job.events[0].actor == "member@example.com (api)"


# --- audit, limits, secrets ---------------------------------------------------------------------------


def test_the_timeline_names_who_did_each_step(client, member_user, simulator):
    headers = bearer(api_token(member_user))
    job_id = client.post("/api/v1/jobs/", json={"name": "audit", "model": "gpt-4o-mini"}, headers=headers).json["id"]
    client.post(
        f"/api/v1/jobs/{job_id}/requests",
        json=[{"custom_id": "a", "body": chat_body("no [[sim:status=400]]")}],
        headers=headers,
    )
    client.post(f"/api/v1/jobs/{job_id}/submit", headers=headers)
    run_until_done(job_id)
    client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)
    client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
    run_until_done(job_id)
    client.delete(f"/api/v1/jobs/{job_id}", headers=headers)
    job = db.session.get(BatchJob, job_id)
    db.session.refresh(job)
    by = {event.kind: event.actor for event in job.events}
    for kind in ("created", "submitted", "retried", "cancel_requested", "deleted"):
        assert by[kind] == "member@example.com (api)", kind


def test_running_jobs_per_user_are_limited(app, app_ctx, member_user, simulator):
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 1
    try:
        first = new_job(count=1, owner_id=member_user.id)
        second = new_job(count=1, owner_id=member_user.id)
        jobs.submit_job(first)
        from webapp.errors import AppError

        with pytest.raises(AppError) as caught:
            jobs.submit_job(second)
        assert caught.value.status == 429 and "running" in caught.value.message
        run_until_done(first.id)
        jobs.submit_job(second)
    finally:
        app.config["MAX_ACTIVE_JOBS_PER_USER"] = 10


@pytest.fixture
def limits_on(app):
    """The production limits, from a clean slate."""
    from webapp.config import RATE_LIMITS
    from webapp.extensions import limiter

    saved = {key: app.config[key] for key in RATE_LIMITS}
    app.config.update(RATE_LIMITS)
    limiter.reset()
    yield app
    limiter.reset()
    app.config.update(saved)


def address(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def sign_in_form(client, email: str, password: str, ip: str = "127.0.0.1", forwarded_for: str | None = None) -> int:
    """POST the sign-in form from ``ip``; the status (302 signed in, 401 refused, 429 limited). Signs out after."""
    from tests.test_accounts import Forms

    forms = Forms(client)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    status = forms.post("/login", {"email": email, "password": password}, headers=headers, **address(ip)).status_code
    if status == 302:
        forms.post("/logout", page="/account/tokens", **address(ip))
    return status


def test_sign_in_attempts_are_rate_limited(limits_on, client, member_user):
    statuses = [sign_in_form(client, "member@example.com", "wrong password!", ip=f"192.0.2.{i // 5}") for i in range(7)]
    # Five failures for one account (LOGIN_ACCOUNT_RATE_LIMIT), whatever the addresses they come from.
    assert statuses == [401] * 5 + [429] * 2
    assert sign_in_form(client, "member@example.com", PASSWORD, ip="192.0.2.99") == 429
    limits_on.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "1000 per minute"
    # Ten failures from one address (LOGIN_RATE_LIMIT), whichever accounts they name.
    statuses = [sign_in_form(client, f"user{i}@example.com", "wrong password!", ip="192.0.2.50") for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    assert sign_in_form(client, "member@example.com", PASSWORD, ip="192.0.2.50") == 429


def test_failed_sign_ins_do_not_lock_out_others_and_successes_are_free(limits_on, client, member_user):
    for _ in range(10):
        assert sign_in_form(client, "member@example.com", "wrong password!", ip="192.0.2.1") in (401, 429)
    other = accounts.create_user("other@example.com", PASSWORD)
    assert sign_in_form(client, other.email, PASSWORD, ip="192.0.2.2") == 302
    assert [sign_in_form(client, other.email, PASSWORD, ip="192.0.2.2") for _ in range(15)] == [302] * 15


def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(limits_on, client, member_user):
    limits_on.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "1000 per minute"
    statuses = [
        sign_in_form(client, "member@example.com", "wrong password!", forwarded_for=f"203.0.113.{i}") for i in range(11)
    ]
    assert statuses == [401] * 10 + [429]


def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit(app, committed_db, tmp_path):
    """TRUSTED_PROXIES=1: the address the proxy names counts, not the proxy's own (everyone's)."""
    from tests.conftest import base_config
    from webapp import create_app

    proxied = create_app(
        base_config(
            tmp_path,
            TRUSTED_PROXIES=1,
            LOGIN_RATE_LIMIT="10 per minute",
            SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        )
    )
    client = proxied.test_client()
    with proxied.app_context():
        from webapp.extensions import limiter

        limiter.reset()
        accounts.create_user("member@example.com", PASSWORD)
        accounts.create_user("other@example.com", PASSWORD)
        proxy = "10.0.0.1"
        attacker = [
            sign_in_form(client, "member@example.com", "wrong password!", ip=proxy, forwarded_for="203.0.113.9")
            for _ in range(11)
        ]
        assert attacker == [401] * 10 + [429]
        assert sign_in_form(client, "other@example.com", PASSWORD, ip=proxy, forwarded_for="198.51.100.4") == 302
        limiter.reset()
        db.engine.dispose()


def test_the_api_is_rate_limited_per_token(limits_on, client, member_user):
    limits_on.config["API_RATE_LIMIT"] = "5 per minute"
    headers = bearer(api_token(member_user))
    statuses = [client.get("/api/v1/jobs/", headers=headers).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    limited = client.get("/api/v1/jobs/", headers=headers)
    assert limited.json["error"]["code"] == "rate_limited" and "Retry-After" in limited.headers
    other = bearer(api_token(accounts.create_user("x@example.com", PASSWORD)))
    assert client.get("/api/v1/jobs/", headers=other).status_code == 200


def test_respelling_the_authorization_header_gives_no_fresh_limit(limits_on, client, member_user):
    limits_on.config["API_RATE_LIMIT"] = "5 per minute"
    token = api_token(member_user)
    spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer  {token}", f"bEaReR \t{token} "]
    statuses = [
        client.get("/api/v1/jobs/", headers={"Authorization": spelling}).status_code for spelling in spellings * 2
    ]
    assert statuses == [200] * 5 + [429] * 5


def test_refused_tokens_are_limited_per_address(limits_on, client, member_user):
    guesser, neighbour = address("198.51.100.7"), address("198.51.100.8")
    statuses = [client.get("/api/v1/jobs/", headers=bearer(f"bp_guess-{i}"), **guesser).status_code for i in range(25)]
    assert statuses == [401] * 20 + [429] * 5  # API_AUTH_FAILURE_LIMIT: 20 per minute
    assert client.get("/health", headers=bearer("bp_guess-x"), **guesser).status_code == 429  # the same bucket
    good = bearer(api_token(member_user))
    assert client.get("/api/v1/jobs/", headers=good, **guesser).status_code == 429  # shut out for the window
    assert client.get("/api/v1/jobs/", headers=good, **neighbour).status_code == 200
    assert [client.get("/api/v1/jobs/", headers=good, **neighbour).status_code for _ in range(30)] == [200] * 30


def test_the_openai_key_never_appears_in_pages_api_or_logs(app, client, admin_user, caplog):
    key = "sk-live-very-secret-key-0123456789"
    app.config["OPENAI_API_KEY"] = key
    try:
        caplog.set_level(logging.DEBUG)
        sign_in(client, admin_user)
        texts = [
            client.get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
            for path in ("/jobs", "/jobs/new", "/overview", "/health")
        ]
        headers = bearer(api_token(admin_user))
        texts.append(client.get("/api/v1/jobs/", headers=headers).get_data(as_text=True))
        texts.append(
            client.post(
                "/api/v1/jobs/", json={"name": "x", "model": "gpt-4o-mini", "provider": "openai"}, headers=headers
            ).get_data(as_text=True)
        )
        texts.append(client.get("/api/v1/openapi.json").get_data(as_text=True))
    finally:
        app.config["OPENAI_API_KEY"] = None
    assert all(key not in text for text in texts)
    assert key not in caplog.text


def test_tokens_and_passwords_stay_out_of_the_logs(client, member_user, caplog):
    caplog.set_level(logging.DEBUG)
    plain = api_token(member_user)
    client.get("/api/v1/jobs/", headers=bearer(plain))
    client.get("/api/v1/jobs/", headers=bearer(plain + "x"))
    from tests.test_accounts import Forms

    Forms(client).post("/login", {"email": "member@example.com", "password": "the-wrong-one-123"})
    assert plain not in caplog.text and "the-wrong-one-123" not in caplog.text
    assert "api authentication refused" in caplog.text and "failed sign-in" in caplog.text


def test_a_tampered_session_cookie_signs_nobody_in(app, client, member_user):
    sign_in(client, member_user)
    assert client.get("/jobs").status_code == 200
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    payload, signature = cookie.value.rsplit(".", 1)
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    client.delete_cookie(cookie.key, domain=cookie.domain, path=cookie.path)
    client.set_cookie(cookie.key, forged, domain=cookie.domain, path=cookie.path)
    assert client.get_cookie(cookie.key).value == forged
    assert client.get("/jobs").status_code == 302


def test_an_oversized_upload_is_refused_with_413(app, client, member_user):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        headers = bearer(api_token(member_user))
        job_id = client.post("/api/v1/jobs/", json={"name": "big", "model": "gpt-4o-mini"}, headers=headers).json["id"]
        response = client.post(
            f"/api/v1/jobs/{job_id}/files",
            headers=headers,
            data={"file": (io.BytesIO(b"x" * 4096), "big.jsonl")},
            content_type="multipart/form-data",
        )
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 256 * 1024 * 1024
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"
