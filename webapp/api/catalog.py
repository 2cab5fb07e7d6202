"""The models a job may name, with their batch prices: the price table's, and the provider's own list."""

from webapp.api.blueprint import MODELS, bp
from webapp.api.http import respond
from webapp.api.schemas import ModelsQuery
from webapp.api.serialisers import ModelList, model_list
from webapp.services import catalog


@bp.get("/models", tags=[MODELS], responses={200: ModelList})
def list_models(query: ModelsQuery):
    """List the models a job may name on a provider, with their batch prices per million tokens.

    A job whose model is not listed here is refused (422, code `unknown_model`) unless it sets
    `allow_unknown_model: true`. The provider's list is cached for a while (`MODEL_LIST_CACHE_SECONDS`).
    """
    return respond(model_list(catalog.catalog(query.provider)))
