"""The blueprint of the service endpoints, which flask-openapi3 documents with the API."""

from flask_openapi3 import APIBlueprint, Tag

from webapp.api.blueprint import operation_id

bp = APIBlueprint("main", __name__, operation_id_callback=operation_id)  # routes flask-openapi3 also documents
SERVICE = Tag(name="service", description="Who answers, and whether it works")
