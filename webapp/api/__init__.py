"""The JSON API under /api/v1 (flask-openapi3): the blueprint with its views attached, and its registration."""

from webapp.api import catalog, files, job_data, jobs  # noqa: F401  (the views register on bp)
from webapp.api.blueprint import bp, init_app, openapi_options

__all__ = ["bp", "init_app", "openapi_options"]
