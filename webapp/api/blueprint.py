"""The JSON API's blueprint (flask-openapi3), its tags, the OpenAPI document's settings and its registration."""

from typing import Any

from flask import redirect, render_template, url_for
from flask_openapi3 import APIBlueprint, Info, OpenAPI, Tag

from webapp.about import SERVICE_NAME, __version__
from webapp.api import auth, http
from webapp.api.serialisers import ErrorOut, error_responses

PREFIX = "/api/v1"
DESCRIPTION = """\
Drive the batch processor from scripts: create a job, add requests (JSON or a JSONL/CSV file), submit it,
follow its progress and download the results.

* **Errors** always look like `{"error": {"code": "...", "message": "...", "details": [{"field", "message"}]}}`:
  400 malformed JSON, 404 unknown, 405 wrong method, 409 wrong state, 413 too large, 415 wrong content type,
  422 invalid fields (dotted `field` paths), 429 rate limited.
* **Lists**: jobs are paged by `page`/`per_page`; requests, responses and events by cursor
  (`after` = the previous page's `next_after`, `limit` at most 500). Each list gives the `next` URL (null at the end).
* **Limits**: JSON nests at most 64 levels and its integers fit in 64 bits (else 422, never rounded); adding
  requests takes at most 100,000 items a call, each at most the server's `MAX_REQUEST_MB`.
* **Costs** are decimal strings in US dollars with 8 places (`"0.01250000"`), never floats.
* **Times** are ISO 8601 in UTC.
"""
JOBS = Tag(name="jobs", description="Create, change, submit, cancel, retry and delete jobs")
CONTENTS = Tag(name="contents", description="A job's requests, responses, timeline and results")
FILES = Tag(name="files", description="Add requests from JSONL or CSV files")
MODELS = Tag(name="models", description="The models a job may name, with their batch prices")


def operation_id(*, name: str, **_: Any) -> str:
    return name  # the view's name (create_job, list_requests, ...) reads well in generated clients


class _Blueprint(APIBlueprint):
    def add_url_rule(
        self, rule: str, endpoint: str | None = None, view_func=None, provide_automatic_options=None, **options: Any
    ) -> None:
        """Every path works with and without its trailing slash (no redirect, which would lose a POST body)."""
        options.setdefault("strict_slashes", False)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)


bp = _Blueprint(
    "api",
    __name__,
    url_prefix=PREFIX,
    abp_responses=error_responses(401, 422, 429),
    abp_security=[{"bearerAuth": []}],
    operation_id_callback=operation_id,
)
bp.before_request(auth.authenticate)
bp.before_request(http.check_body)


def openapi_options() -> dict[str, Any]:
    """Arguments for the app class, flask_openapi3.OpenAPI: document info, where the document and docs live."""
    return {
        "info": Info(title=f"{SERVICE_NAME} API", version=__version__, description=DESCRIPTION),
        "doc_prefix": PREFIX,  # /api/v1/openapi.json, Swagger UI at /api/v1/swagger (assets from the wheel)
        "doc_url": "/openapi.json",
        "validation_error_callback": http.validation_error,
        "validation_error_model": ErrorOut,
        "security_schemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A personal API token from the dashboard"}
        },
    }


def init_app(app: OpenAPI) -> None:
    from webapp import security
    from webapp.extensions import csrf, limiter

    limiter.limit(lambda: app.config["API_RATE_LIMIT"], key_func=security.token_key)(bp)
    security.refused_tokens(bp)
    app.register_api(bp)
    csrf.exempt(bp)  # stateless: a bearer token, never a cookie, so there is nothing to forge
    # flask-openapi3's index page offers a choice of one UI (and links off-site): go straight to Swagger UI.
    app.view_functions["openapi.openapi"] = lambda: redirect(url_for("swagger.swagger"))
    # Its Swagger UI page starts from an inline script, which the CSP blocks: ours starts from a file.
    app.view_functions["swagger.swagger"] = lambda: render_template("api/swagger.html", title=f"{SERVICE_NAME} API")
