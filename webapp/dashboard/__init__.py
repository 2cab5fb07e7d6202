"""The analysts' dashboard: server-rendered pages and htmx fragments over the same services as the API."""

from webapp.dashboard import filters, jobs, model_choice, new_job, overview, results  # noqa: F401  (attach routes)
from webapp.dashboard.blueprint import bp

__all__ = ["bp"]
