"""API test helpers: a JSON client that checks the one error shape on every error, and jobs built through it."""

from __future__ import annotations

from tests.factories import chat_body

API = "/api/v1"


class ApiClient:
    """The Flask test client with JSON helpers; every error response is checked for the API's error shape."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def call(self, method: str, path: str, expect: int | None = None, **kwargs):
        if self.token:
            kwargs["headers"] = {"Authorization": f"Bearer {self.token}", **kwargs.get("headers", {})}
        response = self.client.open(API + path, method=method, **kwargs)
        if response.status_code >= 400:
            assert_error_shape(response)
        if expect is not None:
            assert response.status_code == expect, response.get_data(as_text=True)[:2000]
        return response

    def get(self, path, expect=200, **kwargs):
        return self.call("GET", path, expect, **kwargs)

    def post(self, path, expect=None, **kwargs):
        return self.call("POST", path, expect, **kwargs)

    def put(self, path, expect=None, **kwargs):
        return self.call("PUT", path, expect, **kwargs)

    def delete(self, path, expect=None, **kwargs):
        return self.call("DELETE", path, expect, **kwargs)

    def create_job(self, **fields) -> dict:
        return self.post("/jobs/", 201, json={"name": "api job", "model": "gpt-4o-mini", **fields}).get_json()

    def add_requests(self, job_id: int, texts: list[str], prefix: str = "req-") -> dict:
        items = [{"custom_id": f"{prefix}{i}", "body": chat_body(text)} for i, text in enumerate(texts)]
        return self.post(f"/jobs/{job_id}/requests", 201, json=items).get_json()

    def job_with_requests(self, count: int = 3, texts: list[str] | None = None, **fields) -> dict:
        job = self.create_job(**fields)
        self.add_requests(job["id"], texts if texts is not None else [f"prompt {i}" for i in range(count)])
        return job


def assert_error_shape(response) -> dict:
    """Errors are JSON ``{"error": {"code", "message", "details"?}}``, never an HTML page."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert set(error) <= {"code", "message", "details"} and error["code"] and error["message"]
    for detail in error.get("details", []):
        assert set(detail) == {"field", "message"}
    return error


def error_of(response) -> dict:
    return assert_error_shape(response)
