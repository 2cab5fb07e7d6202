"""Views for GET / (service identity, or the dashboard for browsers) and GET /health."""

from flask import current_app, jsonify, redirect, request, url_for
from flask_login import current_user

from webapp import SERVICE_NAME, __version__
from webapp.main import bp
from webapp.security import Unauthorized, bearer_token, refused_tokens
from webapp.services import accounts
from webapp.services.health import check_health


@bp.get("/")
def index():
    """Browsers (HTML preferred) go to the jobs; scripts and ``*/*`` get the service identity as JSON."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = redirect(url_for("dashboard.list_jobs"))
    else:
        response = jsonify(service=SERVICE_NAME, version=__version__)
    response.vary.add("Accept")
    return response


@bp.get("/health")
@refused_tokens
def health():
    """The status for anyone (load balancers); each dependency's details for a signed-in user or an API token."""
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
