"""Requests through the API: added all or nothing, listed by cursor with filters, shown one at a time."""

from __future__ import annotations

import json

import pytest

from tests.api.helpers import API, error_of
from tests.factories import chat_body


def test_add_requests_accepts_short_and_full_batch_lines(api):
    job = api.create_job(max_tokens=100)
    items = [
        {"custom_id": "a", "body": chat_body("héllo")},
        {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": chat_body("hi")},
    ]
    assert api.post(f"/jobs/{job['id']}/requests", 201, json=items).get_json() == {"added": 2, "total_requests": 2}
    rows = api.get(f"/jobs/{job['id']}/requests").get_json()["data"]
    assert [(r["custom_id"], r["status"], r["response"]) for r in rows] == [
        ("a", "pending", None),
        ("b", "pending", None),
    ]
    assert rows[0]["body"]["max_tokens"] == 100 and rows[0]["body"]["messages"][0]["content"] == "héllo"


def test_one_bad_request_stores_none_and_names_its_index(api):
    job = api.create_job()
    items = [
        {"custom_id": "ok", "body": chat_body("fine")},
        {"custom_id": "wrong-model", "body": chat_body("x", model="gpt-4o")},
        {"custom_id": "ok", "body": chat_body("again")},
        {"custom_id": "nul", "body": chat_body("a\u0000b")},
    ]
    error = error_of(api.post(f"/jobs/{job['id']}/requests", 422, json=items))
    assert error["message"] == "3 requests are invalid; none was added"
    details = {d["field"]: d["message"] for d in error["details"]}
    assert set(details) == {"[1]", "[2]", "[3]"}
    assert details["[1]"].startswith("model_mismatch:")
    assert details["[2]"].startswith("duplicate_custom_id:")
    assert details["[3]"].startswith("unstorable_value:")
    assert api.get(f"/jobs/{job['id']}").get_json()["counts"]["total"] == 0


def test_custom_ids_already_in_the_job_are_refused(api):
    job = api.job_with_requests(2)
    error = error_of(
        api.post(
            f"/jobs/{job['id']}/requests",
            422,
            json=[{"custom_id": "new", "body": chat_body("x")}, {"custom_id": "req-1", "body": chat_body("y")}],
        )
    )
    assert error["details"] == [
        {"field": "[1]", "message": "duplicate_custom_id: custom_id 'req-1' is already in the job"}
    ]


@pytest.mark.parametrize(
    "body, field",
    [
        ([], ""),
        ({"custom_id": "a", "body": {}}, ""),
        ([{"custom_id": "", "body": {}}], "[0].custom_id"),
        ([{"custom_id": "a" * 256, "body": {}}], "[0].custom_id"),
        ([{"custom_id": "a", "body": []}], "[0].body"),
        ([{"custom_id": "a", "body": {}, "method": "GET"}], "[0].method"),
        ([{"custom_id": "a", "body": {}, "extra": 1}], "[0].extra"),
    ],
)
def test_request_items_are_validated_by_schema(api, body, field):
    job = api.create_job()
    error = error_of(api.post(f"/jobs/{job['id']}/requests", 422, json=body))
    assert field in [d["field"] for d in error["details"]]


def test_requests_can_only_be_added_to_drafts(api):
    job = api.job_with_requests(1)
    api.post(f"/jobs/{job['id']}/submit", 200)
    error = error_of(api.post(f"/jobs/{job['id']}/requests", 409, json=[{"custom_id": "x", "body": chat_body("x")}]))
    assert error["message"] == "cannot add requests to a job that is queued; only drafts can"
    api.post("/jobs/777777/requests", 404, json=[{"custom_id": "x", "body": chat_body("x")}])


def test_requests_are_cursor_paged_with_a_next_link(api):
    job = api.job_with_requests(7)
    path = f"/jobs/{job['id']}/requests?limit=3"
    seen, pages = [], 0
    while path:
        page = api.get(path).get_json()
        seen += [r["custom_id"] for r in page["data"]]
        pages += 1
        if page["next"]:
            assert page["next_after"] == page["data"][-1]["id"]
            assert f"after={page['next_after']}" in page["next"] and "limit=3" in page["next"]
        path = page["next"] and page["next"].removeprefix(API)
    assert seen == [f"req-{i}" for i in range(7)] and pages == 3


def test_requests_filter_by_status_and_custom_id_prefix(api):
    job = api.create_job()
    api.add_requests(job["id"], ["a", "b", "c"], prefix="alpha-")
    api.add_requests(job["id"], ["d", "e"], prefix="beta-")
    page = api.get(f"/jobs/{job['id']}/requests?custom_id=beta-&limit=1").get_json()
    assert [r["custom_id"] for r in page["data"]] == ["beta-0"]
    assert "custom_id=beta-" in page["next"]
    assert api.get(f"/jobs/{job['id']}/requests?status=failed").get_json() == {
        "data": [],
        "next_after": None,
        "next": None,
    }
    assert len(api.get(f"/jobs/{job['id']}/requests?status=pending").get_json()["data"]) == 5
    assert api.get(f"/jobs/{job['id']}/requests?custom_id=%25").get_json()["data"] == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("status=done", "status"),
        (f"after={2**64}", "after"),
    ],
)
def test_request_list_parameters_are_validated(api, query, field):
    job = api.create_job()
    error = error_of(api.get(f"/jobs/{job['id']}/requests?{query}", 422))
    assert [d["field"] for d in error["details"]] == [field]


def test_one_request_is_shown_or_404(api):
    job = api.job_with_requests(2)
    first = api.get(f"/jobs/{job['id']}/requests").get_json()["data"][0]
    assert api.get(f"/jobs/{job['id']}/requests/{first['id']}").get_json() == first
    other = api.create_job()
    api.get(f"/jobs/{other['id']}/requests/{first['id']}", 404)
    api.get(f"/jobs/999999/requests/{first['id']}", 404)
    api.get(f"/jobs/{job['id']}/requests/999999999", 404)


def test_lists_of_unknown_jobs_are_404(api):
    for what in ("requests", "responses", "events", "results"):
        assert error_of(api.get(f"/jobs/987654/{what}", 404))["message"] == "job 987654 not found"


def test_events_are_cursor_paged(api):
    job = api.job_with_requests(1)
    api.put(f"/jobs/{job['id']}", 200, json={"name": "renamed"})
    first = api.get(f"/jobs/{job['id']}/events?limit=2").get_json()
    assert [e["kind"] for e in first["data"]] == ["created", "requests_added"]
    rest = api.get(first["next"].removeprefix(API)).get_json()
    assert [e["kind"] for e in rest["data"]] == ["updated"] and rest["next"] is None
    assert rest["data"][0]["message"] == "Updated name"


# --- hostile bodies -----------------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def post_raw(api, job_id: int, data: str | bytes, expect: int):
    return api.post(f"/jobs/{job_id}/requests", expect, data=data, content_type="application/json")


def stored_count(api, job_id: int) -> int:
    return api.get(f"/jobs/{job_id}").get_json()["counts"]["total"]


@pytest.mark.parametrize("depth, status", [(1000, 422), (300_000, 422)])
def test_a_body_nested_past_the_limit_is_refused_naming_the_item(api, depth, status):
    job = api.create_job()
    ok = json.dumps({"custom_id": "ok", "body": chat_body("fine")})
    error = error_of(post_raw(api, job["id"], f'[{ok}, {{"custom_id": "deep", "body": {nested(depth)}}}]', status))
    reason = "nested deeper than 64 levels, the most accepted"
    assert error["message"] == f"item [1] of the request body is refused: {reason}"
    assert error["details"] == [{"field": "[1]", "message": reason}]
    assert stored_count(api, job["id"]) == 0


def test_request_bodies_orjson_could_not_write_are_refused_before_anything_is_stored(api):
    job = api.create_job()
    deep = {**chat_body("x"), "tree": json.loads(nested(300))}
    error = error_of(
        api.post(
            f"/jobs/{job['id']}/requests",
            422,
            json=[{"custom_id": "ok", "body": chat_body("x")}, {"custom_id": "deep", "body": deep}],
        )
    )
    assert error["details"][0]["field"] == "[1]"
    assert stored_count(api, job["id"]) == 0


def test_integers_past_64_bits_are_refused_not_rounded(api):
    job = api.create_job()
    items = (
        '[{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "x"}], "seed": 1}},'
        ' {"custom_id": "b", "body": {"messages": [{"role": "user", "content": "x"}], '
        '"seed": 123456789012345678901234567890}}]'
    )
    error = error_of(post_raw(api, job["id"], items, 422))
    assert error["details"][0]["field"] == "[1]"
    assert error["details"][0]["message"].startswith("the integer 123456789012345678901234567890 does not fit in 64")
    assert stored_count(api, job["id"]) == 0
    exact = 2**63 - 1
    api.post(f"/jobs/{job['id']}/requests", 201, json=[{"custom_id": "c", "body": {**chat_body("x"), "seed": exact}}])
    assert api.get(f"/jobs/{job['id']}/requests").get_json()["data"][0]["body"]["seed"] == exact


def test_an_item_larger_than_one_request_is_refused_as_it_arrives(api, app):
    job = api.create_job()
    saved = app.config["MAX_REQUEST_BYTES"]
    app.config["MAX_REQUEST_BYTES"] = 4096
    try:
        error = error_of(
            api.post(
                f"/jobs/{job['id']}/requests",
                422,
                json=[
                    {"custom_id": "small", "body": chat_body("x")},
                    {"custom_id": "big", "body": chat_body("x" * 5000)},
                ],
            )
        )
    finally:
        app.config["MAX_REQUEST_BYTES"] = saved
    assert error["details"] == [{"field": "[1]", "message": "larger than 4,096 bytes, the most one request may be"}]
    assert stored_count(api, job["id"]) == 0


def test_more_items_than_one_call_takes_are_refused(api, monkeypatch):
    from webapp.api import job_data

    monkeypatch.setattr(job_data, "MAX_LINES_PER_CALL", 3)
    job = api.create_job()
    items = [{"custom_id": f"r{i}", "body": chat_body("x")} for i in range(5)]
    error = error_of(api.post(f"/jobs/{job['id']}/requests", 422, json=items))
    assert error["details"][0]["message"] == "at most 3 requests can be added at once; send the rest in another call"
    assert stored_count(api, job["id"]) == 0


@pytest.mark.parametrize(
    "data, status, message",
    [
        ("", 400, "the request body is not valid JSON: the body is empty"),
        ('[{"custom_id": "a", "body": {}}', 400, "item [0] of the request body is not valid JSON: the body ends"),
        (
            '[{"custom_id": "a", "body": {}},]',
            400,
            "item [1] of the request body is not valid JSON: a value is missing",
        ),
        ('[{"custom_id": "a", "body": {}}] []', 400, "is not valid JSON: there is more after the array"),
        ('[{"custom_id": "a", "body": {oops}}]', 400, "item [0] of the request body is not valid JSON: unexpected"),
        ('[{"custom_id": "a", "body": {"n": NaN}}]', 400, "item [0] of the request body is not valid JSON"),
        ('[{"custom_id": "a", "body": {"t": "\\ud800"}}]', 400, "item [0] of the request body is not valid JSON"),
        ('{"custom_id": "a"}', 422, "the request body is refused: not a JSON array of requests"),
        ("[]", 422, "no requests given"),
    ],
)
def test_malformed_arrays_are_refused_with_where(api, data, status, message):
    job = api.create_job()
    assert message in error_of(post_raw(api, job["id"], data, status))["message"]
    assert stored_count(api, job["id"]) == 0
