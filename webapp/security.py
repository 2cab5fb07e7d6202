"""Who may do what: sessions (Flask-Login), rate limits (Flask-Limiter), security headers on every response."""

from __future__ import annotations

from flask import Flask, g, redirect, request, url_for

from webapp.errors import AppError, wants_json
from webapp.extensions import limiter, login_manager

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE", False))
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "batches-limits")
    _init_login(app)
    limiter.init_app(app)
    app.after_request(_security_headers)


def _init_login(app: Flask) -> None:
    from webapp.services import accounts

    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    login_manager.user_loader(accounts.load_session_user)

    @app.teardown_request
    def _forget_user(exc) -> None:
        # Flask-Login keeps the user on ``g``; when an app context outlives one request (a shell, the test
        # client), the next request must load its own user from its own cookie.
        g.pop("_login_user", None)
        g.pop("api_user", None)

    @login_manager.unauthorized_handler
    def _unauthorized():
        if wants_json():
            raise Unauthorized("sign in first: send an API token as 'Authorization: Bearer <token>'")
        if accounts.needs_setup():
            return redirect(url_for("auth.setup"))
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
