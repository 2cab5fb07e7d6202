"""Accounts in the browser: first-run setup, sign-in and out, own password and API tokens, user admin."""

from webapp.auth import admin, views  # noqa: F401  (attach routes)
from webapp.auth.blueprint import bp

__all__ = ["bp"]
