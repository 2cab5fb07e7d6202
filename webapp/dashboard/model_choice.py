"""The new-job page's model picker: the provider's models with their batch prices, and the warning (with its
confirmation) for a model that neither the price table nor the provider knows."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from webapp.dashboard.blueprint import bp
from webapp.dashboard.forms import NewJobForm
from webapp.dashboard.htmx import page_or_fragment
from webapp.dashboard.new_job import new_job_context
from webapp.models.job_settings import MODEL
from webapp.providers import available_providers
from webapp.services import catalog
from webapp.services.catalog import Catalog, ModelOption

CHECKED_FIELDS = ("provider", "model")


@dataclass(frozen=True)
class ModelPicker:
    """What the picker shows: the models offered, and what is known of the one typed (None while blank)."""

    catalog: Catalog
    choice: ModelOption | None

    @property
    def closest(self) -> str | None:
        return self.catalog.closest(self.choice.name) if self.choice and not self.choice.known else None


@bp.app_template_global()
def model_picker(provider: str | None, model: str | None) -> ModelPicker:
    """The picker for the provider chosen (the default one while that is not a provider offered here)."""
    if provider not in available_providers():
        provider = current_app.config["DEFAULT_PROVIDER"]
    model = (model or "").strip()
    typed = bool(model) and MODEL.problem(model) is None  # a model the form refuses has no price to show
    return ModelPicker(catalog.catalog(provider), catalog.describe(provider, model) if typed else None)


@bp.get("/jobs/new/model")
def choose_model():
    """The picker for the provider and model typed so far (htmx asks as they change); a browser gets the new-job
    page with them filled in."""
    form = NewJobForm(formdata=request.args)
    problems = [name for name in CHECKED_FIELDS if not form[name].validate(form)]
    return page_or_fragment(
        "dashboard/new_job.html",
        "dashboard/_model_choice.html",
        status=422 if problems else 200,
        **new_job_context(form, None),
    )
