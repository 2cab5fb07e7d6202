"""Who may do what: sessions (Flask-Login), rate limits (Flask-Limiter), proxies, security headers on every response."""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, g, redirect, request, url_for
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.errors import AppError, wants_json
from webapp.extensions import limiter, login_manager

CONTENT_SECURITY_POLICY = "; ".join(
    [
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
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Pages and downloads carry someone's jobs: no browser or proxy keeps a copy (static files set their own).
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "batches-limits")
    _trust_proxies(app)
    _init_login(app)
    limiter.init_app(app)
    app.after_request(_security_headers)


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, the client is the address they name in X-Forwarded-For.

    Without it the headers are ignored (anyone can send them): limits and logs see the connecting address.
    """
    hops = app.config.get("TRUSTED_PROXIES", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


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
    if current_app.config["APP_ENV"] == "production":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


# --- who is calling, for rate limits ----------------------------------------------------------------------


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header (the scheme in any case, spaces around it ignored)."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" and auth.token else None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]  # limit keys never hold a token or an email


def token_key() -> str:
    """API calls count per token (however the header spells it), or per address without one."""
    token = bearer_token()
    return "token:" + _digest(token) if token else "addr:" + get_remote_address()


def account_key() -> str:
    """Sign-in attempts count per account named in the form (known or not)."""
    from webapp.services.accounts import normalise_email

    return "account:" + _digest(normalise_email(request.form.get("email", "")))


def _refused(response) -> bool:
    return response.status_code == 401


# Only refusals count: a success never uses up a limit, and a client over one is refused before its
# password or token is even checked, so guessing learns nothing more.
_FAILED_SIGN_INS = [
    limiter.limit(
        lambda: current_app.config["LOGIN_RATE_LIMIT"],
        key_func=get_remote_address,
        methods=["POST"],
        deduct_when=_refused,
    ),
    limiter.limit(
        lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
        key_func=account_key,
        methods=["POST"],
        deduct_when=_refused,
    ),
]


def limit_failed_sign_ins(view):
    """The sign-in view's limits: failed attempts per address and per account."""
    for limit in _FAILED_SIGN_INS:
        view = limit(view)
    return view


# One bucket per address for every place a token is checked (the API and /health).
refused_tokens = limiter.shared_limit(
    lambda: current_app.config["API_AUTH_FAILURE_LIMIT"],
    scope="refused-tokens",
    key_func=get_remote_address,
    deduct_when=_refused,
)
