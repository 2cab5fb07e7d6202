"""Job endpoints: create, list, show, update, delete; validation and the error shape for every failure."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from tests.api.helpers import API, error_of


def test_create_job_returns_201_with_location_and_defaults(api):
    response = api.post(
        "/jobs/", 201, json={"name": " Reviews ", "model": "gpt-4o-mini", "metadata": {"team": "search", "tags": ["a"]}}
    )
    job = response.get_json()
    assert response.headers["Location"] == f"{API}/jobs/{job['id']}"
    assert job["name"] == "Reviews"
    assert (job["status"], job["provider"], job["endpoint"]) == ("draft", "simulator", "/v1/chat/completions")
    assert job["metadata"] == {"team": "search", "tags": ["a"]}
    assert job["max_retries"] == 3 and job["max_tokens"] is None
    assert job["counts"]["total"] == 0 and job["batches"] == []
    assert job["cost"] == {"estimated": None, "actual": "0.00000000", "currency": "USD"}
    assert job["phase"] == "Draft: add requests, then submit"
    assert job["links"]["requests"] == f"{API}/jobs/{job['id']}/requests"


def test_create_job_records_the_api_as_actor(api):
    job = api.create_job()
    events = api.get(f"/jobs/{job['id']}/events").get_json()["data"]
    assert [(e["kind"], e["actor"]) for e in events] == [("created", "admin@example.com (api)")]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": "gpt-4o-mini"}, "name"),
        ({"name": "", "model": "gpt-4o-mini"}, "name"),
        ({"name": "x" * 201, "model": "gpt-4o-mini"}, "name"),
        ({"name": "x"}, "model"),
        ({"name": "x", "model": "gpt-4o-mini", "temperature": 3}, "temperature"),
        ({"name": "x", "model": "gpt-4o-mini", "max_tokens": 0}, "max_tokens"),
        ({"name": "x", "model": "gpt-4o-mini", "max_tokens": 2**40}, "max_tokens"),
        ({"name": "x", "model": "gpt-4o-mini", "endpoint": "/v1/images"}, "endpoint"),
        ({"name": "x", "model": "gpt-4o-mini", "provider": "anthropic"}, "provider"),
        ({"name": "x", "model": "gpt-4o-mini", "metadata": []}, "metadata"),
        ({"name": "x", "model": "gpt-4o-mini", "metadata": {"a": {"b": "nul\u0000"}}}, "metadata"),
        ({"name": "nul\u0000", "model": "gpt-4o-mini"}, "name"),
        ({"name": "x", "model": "gpt-4o-mini", "max_token": 5}, "max_token"),
    ],
)
def test_invalid_fields_are_422_with_dotted_field_paths(api, body, field):
    error = error_of(api.post("/jobs/", 422, json=body))
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]]
    assert field in error["message"]


def test_nested_field_errors_have_dotted_paths(api):
    job = api.create_job()
    error = error_of(
        api.post(f"/jobs/{job['id']}/requests", 422, json=[{"custom_id": "a", "body": {}}, {"custom_id": 5}])
    )
    fields = {d["field"] for d in error["details"]}
    assert {"[1].custom_id", "[1].body"} <= fields


def test_openai_provider_is_refused_without_an_api_key(api):
    error = error_of(api.post("/jobs/", 422, json={"name": "x", "model": "gpt-4o-mini", "provider": "openai"}))
    assert error["details"] == [{"field": "provider", "message": "provider 'openai' is not available here"}]


@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        ("{not json", "application/json", 400, "bad_request"),
        ('{"name": "x", "model": "gpt-4o-mini", "temperature": NaN}', "application/json", 400, "bad_request"),
        (b"\xff\xfe\x00", "application/json", 400, "bad_request"),
        ("name=x&model=m", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"name": "x", "model": "gpt-4o-mini"}', "text/plain", 415, "unsupported_media_type"),
        ('{"name": "x", "model": "gpt-4o-mini"}', None, 415, "unsupported_media_type"),
        ("[1, 2]", "application/json", 422, "validation_error"),
        ('"text"', "application/json", 422, "validation_error"),
        ("", "application/json", 400, "bad_request"),
    ],
)
def test_malformed_bodies_and_wrong_content_types(api, data, content_type, status, code):
    headers = {"Content-Type": content_type} if content_type else {}
    assert error_of(api.post("/jobs/", status, data=data, headers=headers))["code"] == code


def deep_metadata(depth: int) -> str:
    return '{"deep": ' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [64, 500, 1000, 100_000])
def test_json_bodies_nested_past_the_limit_are_refused_and_nothing_is_stored(api, depth):
    """Metadata 500 levels deep was stored, then every answer showing the job failed; 1,000 levels crashed."""
    body = f'{{"name": "deep", "model": "gpt-4o-mini", "metadata": {deep_metadata(depth)}}}'  # the body adds one level
    error = error_of(api.post("/jobs/", 422, data=body, content_type="application/json"))
    assert error["message"] == "the request body is refused: nested deeper than 64 levels, the most accepted"
    assert api.get("/jobs/").get_json()["total"] == 0
    job = api.create_job()
    api.put(
        f"/jobs/{job['id']}",
        422,
        data=body.replace('"name": "deep", "model": "gpt-4o-mini", ', ""),
        content_type="application/json",
    )
    assert api.get(f"/jobs/{job['id']}").get_json()["metadata"] == {}


def test_metadata_at_the_depth_limit_is_kept_and_shown(api):
    body = f'{{"name": "deep", "model": "gpt-4o-mini", "metadata": {deep_metadata(63)}}}'  # 64 levels with the body
    job = api.post("/jobs/", 201, data=body, content_type="application/json").get_json()
    assert api.get(f"/jobs/{job['id']}").get_json()["metadata"] == json.loads(deep_metadata(63))


def test_integers_past_64_bits_in_a_json_body_are_refused(api):
    body = '{"name": "x", "model": "gpt-4o-mini", "metadata": {"id": 123456789012345678901234567890}}'
    error = error_of(api.post("/jobs/", 422, data=body, content_type="application/json"))
    assert "the integer 123456789012345678901234567890 does not fit in 64 bits" in error["message"]
    assert api.get("/jobs/").get_json()["total"] == 0


def test_a_job_body_is_refused_unread_past_one_megabyte(api):
    """Only the requests array is read as a stream; a job's own fields are small, and a big body is not read."""
    body = b'{"name": "x", "model": "gpt-4o-mini", "description": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    stream = io.BytesIO(body)
    tracemalloc.start()
    try:
        response = api.post(
            "/jobs/", 413, input_stream=stream, content_length=len(body), content_type="application/json"
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error_of(response)["code"] == "too_large"
    assert peak < 4 * 1024 * 1024, f"a refused 20 MB body held {peak:,} bytes"
    assert api.get("/jobs/").get_json()["total"] == 0


def test_too_large_body_is_413(api, app):
    previous = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 100
    try:
        response = api.post("/jobs/", 413, json={"name": "x" * 200, "model": "gpt-4o-mini"})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = previous
    assert error_of(response)["code"] == "too_large"


def test_list_jobs_pages_newest_first_and_links_the_next_page(api):
    ids = [api.create_job(name=f"job {i}")["id"] for i in range(5)]
    first = api.get("/jobs/?per_page=2").get_json()
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert first["previous"] is None
    second = api.get(first["next"].removeprefix(API)).get_json()
    assert [j["id"] for j in second["data"]] == ids[::-1][2:4]
    last = api.get(second["next"].removeprefix(API)).get_json()
    assert [j["id"] for j in last["data"]] == [ids[0]] and last["next"] is None
    assert api.get("/jobs/?page=9").get_json()["data"] == []


def test_list_jobs_filters_by_status_and_searches_names(api):
    api.create_job(name="Product reviews")
    other = api.job_with_requests(name="Support tickets")
    api.post(f"/jobs/{other['id']}/submit", 200)
    found = api.get("/jobs/?search=REVIEW").get_json()
    assert [j["name"] for j in found["data"]] == ["Product reviews"]
    queued = api.get("/jobs/?status=queued&per_page=1").get_json()
    assert [j["name"] for j in queued["data"]] == ["Support tickets"]
    assert api.get("/jobs/?search=100%25").get_json()["total"] == 0  # LIKE wildcards are literal
    assert api.get("/jobs/?status=draft&search=x&per_page=1").status_code == 200


@pytest.mark.parametrize(
    "query, field",
    [
        ("page=0", "page"),
        ("per_page=101", "per_page"),
        ("status=done", "status"),
        ("page=abc", "page"),
        ("search=%00", "search"),
    ],
)
def test_list_jobs_rejects_bad_parameters(api, query, field):
    error = error_of(api.get(f"/jobs/?{query}", 422))
    assert [d["field"] for d in error["details"]] == [field]


def test_get_job_shows_details_and_404_for_unknown(api):
    job = api.job_with_requests(3, metadata={"k": "v"})
    shown = api.get(f"/jobs/{job['id']}").get_json()
    assert shown["counts"] == {
        "total": 3,
        "pending": 3,
        "in_flight": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "finished": 0,
        "answered_at_provider": 0,
    }
    assert shown["tokens"]["estimated_prompt"] > 0
    assert shown["phase"] == "Draft: ready to submit" and shown["time_left_seconds"] is None
    assert error_of(api.get("/jobs/999999", 404))["code"] == "not_found"
    assert error_of(api.get("/jobs/0", 422))["code"] == "validation_error"
    assert api.get("/jobs/abc", 404)


def test_paths_work_with_and_without_trailing_slash(api):
    job = api.create_job()
    assert api.post("/jobs", 201, json={"name": "x", "model": "gpt-4o-mini"})
    assert api.get("/jobs").status_code == api.get("/jobs/").status_code == 200
    assert api.get(f"/jobs/{job['id']}/").get_json()["id"] == job["id"]
    assert api.get(f"/jobs/{job['id']}/events/").status_code == 200


def test_update_changes_details_any_time_and_settings_only_in_draft(api):
    job = api.job_with_requests(1)
    path = f"/jobs/{job['id']}"
    updated = api.put(
        path, 200, json={"name": "Renamed", "metadata": {"v": 2}, "max_tokens": 50, "temperature": None}
    ).get_json()
    assert (updated["name"], updated["metadata"], updated["max_tokens"]) == ("Renamed", {"v": 2}, 50)
    assert "model" in error_of(api.put(path, 409, json={"model": "gpt-4o"}))["message"]
    api.post(f"{path}/submit", 200)
    assert api.put(path, 200, json={"description": "now running"}).get_json()["description"] == "now running"
    error = error_of(api.put(path, 409, json={"max_retries": 1}))
    assert error["code"] == "conflict" and "draft" in error["message"]
    events = api.get(f"{path}/events").get_json()["data"]
    assert "updated" in [e["kind"] for e in events]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"metadata": None}, "metadata"),
        ({"foo": 1}, "foo"),
        ({"model": None}, "model"),
    ],
)
def test_update_rejects_nulls_and_unknown_fields(api, body, field):
    job = api.create_job()
    error = error_of(api.put(f"/jobs/{job['id']}", 422, json=body))
    assert [d["field"] for d in error["details"]] == [field]


def test_update_unknown_job_is_404(api):
    assert error_of(api.put("/jobs/424242", 404, json={"name": "x"}))["code"] == "not_found"


def test_delete_job_is_204_unless_it_is_running(api):
    job = api.job_with_requests(2)
    api.post(f"/jobs/{job['id']}/submit", 200)
    error = error_of(api.delete(f"/jobs/{job['id']}", 409))
    assert "cancel it first" in error["message"]
    draft = api.job_with_requests(2)
    response = api.delete(f"/jobs/{draft['id']}", 204)
    assert response.get_data() == b""
    api.get(f"/jobs/{draft['id']}", 404)
    api.delete(f"/jobs/{draft['id']}", 404)


def test_wrong_method_is_405_with_allow_header(api):
    job = api.create_job()
    response = api.call("PATCH", f"/jobs/{job['id']}", 405, json={})
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert api.call("DELETE", "/jobs/", 405)


def test_unknown_api_path_is_json_404_even_for_browsers(api):
    response = api.get("/nothing/here", 404, headers={"Accept": "text/html"})
    assert error_of(response)["code"] == "not_found"


def test_rate_limit_errors_use_the_error_shape(api, monkeypatch):
    from werkzeug.exceptions import TooManyRequests

    from webapp.services import queries

    def limited(**_):
        raise TooManyRequests("slow down", retry_after=30)

    monkeypatch.setattr(queries, "overview", limited)
    response = api.get("/jobs/stats/overview", 429)
    assert error_of(response) == {"code": "rate_limited", "message": "slow down"}
    assert int(response.headers["Retry-After"]) > 0  # the limiter's own window may stand in for the view's


def test_the_api_needs_no_csrf_token(app, api):
    previous = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        api.post("/jobs/", 201, json={"name": "x", "model": "gpt-4o-mini"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = previous


def test_overview_counts_jobs_and_usage(api):
    api.job_with_requests(2, name="one")
    stats = api.get("/jobs/stats/overview").get_json()
    assert stats["jobs"] == 1 and stats["jobs_by_status"]["draft"] == 1
    assert stats["requests"] == {"total": 2, "succeeded": 0, "failed": 0, "cancelled": 0, "success_rate": None}
    assert stats["by_model"] == [
        {
            "key": "gpt-4o-mini",
            "jobs": 1,
            "requests": 2,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": "0.00000000",
        }
    ]
    assert len(stats["by_day"]) == 1
    assert error_of(api.get("/jobs/stats/overview?days=0", 422))["details"][0]["field"] == "days"
