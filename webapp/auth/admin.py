"""User administration for admins: add, disable, enable, change role, reset password, remove."""

from __future__ import annotations

import logging
from functools import wraps

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.auth.blueprint import bp
from webapp.auth.forms import ActionForm, NewUserForm, ResetPasswordForm, RoleForm
from webapp.auth.views import form_errors
from webapp.errors import AppError
from webapp.services import accounts

log = logging.getLogger(__name__)


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.route("/admin/users", methods=["GET", "POST"])
@admin_required
def users():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data, role=form.role.data)
        except AppError as exc:
            form_errors(form, exc)
        else:
            log.info("user created", extra={"user_id": user.id, "by": current_user.id})
            flash(f"{user.email} can now sign in.", "success")
            return redirect(url_for("auth.users"))
    return render_template(
        "auth/users.html",
        form=form,
        users=accounts.list_users(),
        action=ActionForm(),
        reset=ResetPasswordForm(formdata=None),
        role=RoleForm(formdata=None),
    ), (422 if form.errors else 200)


def _act(user_id: int, change, done: str):
    """Run one admin action on a user and report it; service refusals become flash messages."""
    user = accounts.get_user(user_id)
    try:
        change(user)
    except AppError as exc:
        flash(exc.message, "error")
    else:
        log.info("user changed: %s", done, extra={"user_id": user_id, "by": current_user.id})
        flash(done.format(email=user.email), "success")
    return redirect(url_for("auth.users"))


@bp.post("/admin/users/<int:user_id>/disable")
@admin_required
def disable_user(user_id: int):
    return _act(user_id, lambda u: accounts.set_active(u, False, by=current_user), "{email} is disabled.")


@bp.post("/admin/users/<int:user_id>/enable")
@admin_required
def enable_user(user_id: int):
    return _act(user_id, lambda u: accounts.set_active(u, True, by=current_user), "{email} is enabled.")


@bp.post("/admin/users/<int:user_id>/role")
@admin_required
def change_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    return _act(
        user_id, lambda u: accounts.set_role(u, form.role.data, by=current_user), f"{{email}} is now {form.role.data}."
    )


@bp.post("/admin/users/<int:user_id>/password")
@admin_required
def reset_password(user_id: int):
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        flash("The new password needs at least 10 characters.", "error")
        return redirect(url_for("auth.users"))
    return _act(user_id, lambda u: accounts.set_password(u, form.password.data), "{email} has a new password.")


@bp.post("/admin/users/<int:user_id>/delete")
@admin_required
def delete_user(user_id: int):
    return _act(user_id, lambda u: accounts.delete_user(u, by=current_user), "{email} is removed.")
