"""Views for GET / (service identity, or the dashboard for browsers) and GET /health."""

from flask import current_app, jsonify, redirect, request, url_for

from webapp import SERVICE_NAME, __version__
from webapp.main import bp
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
def health():
    report, healthy = check_health(current_app._get_current_object())
    return jsonify(report), 200 if healthy else 503
