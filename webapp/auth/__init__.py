"""Accounts in the browser: first-run setup, sign-in and out, own password and API tokens, user admin."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from webapp.auth import admin, views  # noqa: E402,F401  (attach routes)
