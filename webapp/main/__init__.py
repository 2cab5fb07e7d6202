"""Service endpoints outside the dashboard and the API: identity and health."""

from flask import Blueprint

bp = Blueprint("main", __name__)

from webapp.main import views  # noqa: E402,F401
