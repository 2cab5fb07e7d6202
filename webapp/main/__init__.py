"""Service endpoints outside the dashboard and the API: identity and health."""

from webapp.main import views  # noqa: F401  (attach routes)
from webapp.main.blueprint import bp

__all__ = ["bp"]
