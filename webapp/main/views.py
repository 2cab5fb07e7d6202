"""Views for GET / (service identity, or the dashboard for browsers) and GET /health."""

from flask import current_app, jsonify, redirect, request, url_for
from flask_login import current_user

from webapp.about import SERVICE_NAME, __version__
from webapp.api.serialisers import ErrorOut
from webapp.main.blueprint import SERVICE, bp
from webapp.main.schemas import HealthOut, ServiceOut
from webapp.security import Unauthorized, bearer_token, refused_tokens
from webapp.services import accounts
from webapp.services.health import check_health

REDIRECT = {
    "description": "A browser (one that prefers HTML) is sent to the dashboard.",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "The jobs page."}},
}
# Anyone may ask; a token (or a signed-in session) gets the details.
OPTIONAL_TOKEN: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]


@bp.get("/", tags=[SERVICE], responses={200: ServiceOut, 302: REDIRECT, 422: ErrorOut})
def index():
    """The service's name and version.

    Scripts (JSON, `*/*` or no `Accept`) get them as JSON; a browser that prefers HTML goes to the dashboard.
    """
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = redirect(url_for("dashboard.list_jobs"))
    else:
        response = jsonify(service=SERVICE_NAME, version=__version__)
    response.vary.add("Accept")
    return response


@bp.get(
    "/health",
    tags=[SERVICE],
    security=OPTIONAL_TOKEN,
    responses={200: HealthOut, 503: HealthOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut},
)
@refused_tokens
def health():
    """Whether the service works: the status for anyone, each dependency for a user or a token.

    Anyone (a load balancer, a monitor) gets the status alone (`HealthStatus`); a signed-in user or a valid API
    token (`Authorization: Bearer <token>`) gets the database, queue, workers and provider too (`HealthReport`,
    never a key). 503 (either shape) when the database is down; 401 for a token that is not valid.
    """
    detailed = _identified()
    report, healthy = check_health(current_app._get_current_object())
    return jsonify(report if detailed else {"status": report["status"]}), 200 if healthy else 503


def _identified() -> bool:
    """True for a signed-in user or a valid token; a token that is not valid is refused (and counted)."""
    token = bearer_token()
    if token is None:
        return current_user.is_authenticated
    if accounts.user_for_token(token) is None:
        raise Unauthorized("unknown, expired or revoked token")
    return True
