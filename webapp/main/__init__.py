"""Service endpoints outside the dashboard and the API: identity and health."""

from flask_openapi3 import APIBlueprint, Tag

from webapp.api import operation_id

bp = APIBlueprint("main", __name__, operation_id_callback=operation_id)  # routes flask-openapi3 also documents
SERVICE = Tag(name="service", description="Who answers, and whether it works")

from webapp.main import views  # noqa: E402,F401
