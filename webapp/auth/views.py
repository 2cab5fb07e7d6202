"""Sign in and out, the first-run setup, one's own password and API tokens."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from webapp.auth.blueprint import bp
from webapp.auth.forms import ActionForm, LoginForm, PasswordForm, SetupForm, TokenForm
from webapp.errors import AppError
from webapp.security import limit_failed_sign_ins
from webapp.services import accounts

log = logging.getLogger(__name__)


def form_errors(form, exc: AppError) -> None:
    """Put a service's field errors next to the form's fields (or at the top)."""
    for detail in exc.details or [{"field": "", "message": exc.message}]:
        field = getattr(form, detail.get("field") or "", None)
        (field.errors if field is not None else form.form_errors).append(detail["message"])


def _safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect would let a link send people elsewhere after sign-in.

    Browsers drop tabs and line breaks from a URL and read ``\\`` as ``/`` (``/\\evil.example`` leaves the
    site), and a line break cannot go into a Location header: such a target falls back to the jobs list.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and target.isprintable()
        and "\\" not in target
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("dashboard.list_jobs")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if not accounts.needs_setup():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_first_admin(form.email.data, form.password.data)
        except AppError as exc:
            form_errors(form, exc)
        else:
            accounts.start_session(user)
            login_user(user)
            log.info("first admin created", extra={"user_id": user.id})
            flash("Welcome! You are the administrator of this installation.", "success")
            return redirect(url_for("dashboard.list_jobs"))
    return render_template("auth/setup.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limit_failed_sign_ins
def login():
    if accounts.needs_setup():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = accounts.sign_in(form.email.data, form.password.data, remember=form.remember.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            log.info("signed in", extra={"user_id": user.id})
            return redirect(_safe_next(request.args.get("next")))
        log.warning("failed sign-in", extra={"remote_addr": request.remote_addr})
        form.form_errors.append("Wrong email or password, or the account is disabled.")
        status = 401
    elif form.errors:
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    accounts.end_session(current_user)
    logout_user()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current_password.data, form.new_password.data)
        except AppError as exc:
            form_errors(form, exc)
        else:
            login_user(current_user)  # this browser goes on under the new sign-in's key
            flash("Your password is changed; other sessions are signed out.", "success")
            return redirect(url_for("auth.change_password"))
    return render_template("auth/password.html", form=form), 422 if form.errors else 200


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        days = form.expires_in_days.data
        expires = datetime.now(UTC) + timedelta(days=int(days)) if days else None
        try:
            token, created = accounts.create_token(current_user, form.name.data, expires_at=expires)
        except AppError as exc:
            form_errors(form, exc)
        else:
            log.info("api token created", extra={"user_id": current_user.id, "token_id": token.id})
            form = TokenForm(formdata=None)
    return render_template(
        "auth/tokens.html", form=form, created=created, tokens=current_user.tokens, action=ActionForm()
    ), 422 if form.errors else 200


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = accounts.revoke_token(current_user, token_id)
    log.info("api token revoked", extra={"user_id": current_user.id, "token_id": token.id})
    flash(f"Token “{token.name}” is revoked.", "success")
    return redirect(url_for("auth.tokens"))
