"""The analysts' dashboard: server-rendered pages and htmx fragments over the same services as the API."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from webapp.dashboard import filters, jobs, new_job, overview, results  # noqa: E402,F401  (attach routes)
