"""Views for GET / (service identity) and GET /health."""

from flask import current_app, jsonify

from webapp import SERVICE_NAME, __version__
from webapp.main import bp
from webapp.services.health import check_health


@bp.get("/")
def index():
    return jsonify(service=SERVICE_NAME, version=__version__)


@bp.get("/health")
def health():
    report, healthy = check_health(current_app._get_current_object())
    return jsonify(report), 200 if healthy else 503
