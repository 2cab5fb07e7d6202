"""The attacks of the security review, one by one: NUL in text (422), ids past the database's integers (404),
a query whose numbers or search do not fit (422), line breaks in the sign-in redirect (the jobs list instead); nothing
is stored. tests/test_route_walker.py sends such values to every route; these tests pin the answers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, sign_in
from tests.dashboard.conftest import CSRF_INPUT, csv_file, job_count
from tests.factories import new_job
from webapp.extensions import db
from webapp.models import ApiToken, User
from webapp.models.base import MAX_BIG_ID, MAX_ID

PAST_INT, PAST_BIGINT = MAX_ID + 1, MAX_BIG_ID + 1
JOB_FIELDS = {"name": "Reviews", "description": "", "model": "gpt-4o-mini"}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    "url", ["/jobs?q=a%00b", "/jobs?status=%00", "/jobs/{job}/requests?q=req%00", "/login?next=/jobs%00"]
)
def test_nul_in_a_query_is_refused(browser, url):
    job = new_job(count=1)
    response = browser.get(url.format(job=job.id))
    assert response.status_code == 422 and "NUL character" in response.text


@pytest.mark.parametrize("field", JOB_FIELDS)
def test_nul_in_a_new_job_field_is_refused_and_nothing_stored(browser, field):
    before = job_count()
    response = browser.new_job((b"Id,Text\n1,hello\n", "r.csv"), **{field: JOB_FIELDS[field] + "\x00x"})
    assert response.status_code == 422 and job_count() == before


def test_nul_in_a_token_name_or_a_new_users_email_is_refused(browser):
    tokens, users = count(ApiToken), count(User)
    assert browser.post("/account/tokens", {"name": "laptop\x00", "expires_in_days": "30"}).status_code == 422
    new_user = {"email": "x\x00@example.com", "password": PASSWORD, "role": "member"}
    assert browser.post("/admin/users", new_user).status_code == 422
    assert (count(ApiToken), count(User)) == (tokens, users)


def test_nul_in_the_sign_in_email_is_refused(client, admin_user):
    token = CSRF_INPUT.search(client.get("/login").text).group(1)
    response = client.post("/login", data={"csrf_token": token, "email": "admin@example.com\x00", "password": PASSWORD})
    assert response.status_code == 422
    assert db.session.get(User, admin_user.id).last_login_at is None


@pytest.mark.parametrize(
    "path",
    [
        f"/jobs/{PAST_INT}",
        f"/jobs/{PAST_INT}/row",
        f"/jobs/{PAST_INT}/requests",
        "/jobs/{job}/requests/" + str(PAST_BIGINT),
        f"/jobs/{PAST_INT}/results.csv",
        "/jobs/" + "9" * 5000,
    ],
)
def test_ids_past_their_column_are_not_found(browser, path):
    job = new_job(count=1)
    assert browser.get(path.format(job=job.id)).status_code == 404


@pytest.mark.parametrize("action", ["disable", "enable", "role", "password", "delete"])
def test_admin_actions_on_a_user_id_past_the_column_are_not_found(browser, action):
    assert (
        browser.post(f"/admin/users/{PAST_INT}/{action}", {"role": "member", "password": PASSWORD}).status_code == 404
    )
    assert browser.post(f"/account/tokens/{PAST_INT}/revoke").status_code == 404


def test_api_ids_past_their_column_are_not_found(client, admin_user):
    from tests.conftest import api_token

    headers = {"Authorization": f"Bearer {api_token(admin_user)}"}
    job = new_job(count=1)
    calls = [
        ("GET", f"/api/v1/jobs/{PAST_INT}"),
        ("DELETE", f"/api/v1/jobs/{PAST_INT}"),
        ("PUT", f"/api/v1/jobs/{PAST_INT}"),
        ("GET", f"/api/v1/jobs/{job.id}/requests/{PAST_BIGINT}"),
    ]
    for method, path in calls:  # not 405 either: werkzeug's "another method matches this path"
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "query", ["page=1e23", f"page={10**23}", "page=0", "page=-1", "page=abc", "page=100001", "q=" + "x" * 201]
)
def test_a_jobs_list_query_that_does_not_fit_is_refused(browser, query):
    response = browser.get(f"/jobs?{query}")
    assert response.status_code == 422


@pytest.mark.parametrize("query", [f"after={10**23}", f"after={PAST_BIGINT}", "after=-1", "after=x", "q=" + "x" * 256])
def test_a_requests_query_that_does_not_fit_is_refused(browser, query):
    job = new_job(count=1)
    assert browser.get(f"/jobs/{job.id}/requests?{query}").status_code == 422


def test_paging_at_the_bounds_still_works(browser):
    job = new_job(count=1)
    assert browser.get("/jobs?page=100000&q=" + "x" * 200).status_code == 200
    assert browser.get(f"/jobs/{job.id}/requests?after={MAX_BIG_ID}").status_code == 200
    assert browser.get("/jobs?page=").status_code == 200  # an empty field is the first page


@pytest.mark.parametrize(
    "target", ["/jobs%0d%0aSet-Cookie:%20a=b", "/jobs%0aX", "/%09/evil.example", "/%5Cevil.example", "/jobs%5C..%5C"]
)
def test_a_sign_in_redirect_with_line_breaks_or_backslashes_goes_to_the_jobs(client, admin_user, target):
    token = CSRF_INPUT.search(client.get("/login").text).group(1)
    signed_in = client.post(
        f"/login?next={target}", data={"csrf_token": token, "email": "admin@example.com", "password": PASSWORD}
    )
    again = client.get(f"/login?next={target}")
    for response in (signed_in, again):
        assert response.status_code == 302 and response.headers["Location"] == "/jobs"
        assert "Set-Cookie: a" not in str(response.headers)


def test_a_safe_sign_in_redirect_is_kept(client, admin_user):
    sign_in(client, admin_user)
    assert client.get("/login?next=/jobs%3Fq%3Dcaf%C3%A9").headers["Location"] == "/jobs?q=caf%C3%A9"


def test_a_csv_preview_with_an_unknown_endpoint_says_so(browser):
    page = browser.new_job(
        (csv_file([["1", "hello", "5"]]), "r.csv"), template="Echo {{ Text }}", endpoint="/v1/nothing"
    )
    assert page.status_code == 422 and "Choose one of the endpoints" in page.text
