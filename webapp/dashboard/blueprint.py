"""The dashboard's blueprint, which every page of it requires a signed-in user for."""

from flask import Blueprint, current_app
from flask_login import current_user

bp = Blueprint("dashboard", __name__)


@bp.before_request
def require_sign_in():
    """Every dashboard page is for signed-in people only (one hook, so no view can forget it)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    return None
