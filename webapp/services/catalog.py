"""The models a job may name: the price table's and the provider's own list (cached), each with its batch price,
and the one rule for a model that neither knows."""

from __future__ import annotations

import difflib
import logging
import threading
from dataclasses import dataclass

from cachetools import TLRUCache
from flask import Flask, current_app

from webapp.errors import ValidationFailed
from webapp.providers import ProviderError, available_providers, base_url, dialect, get_provider
from webapp.services.pricing import Price, price_table

log = logging.getLogger(__name__)
CONFIRM_FIELD = "allow_unknown_model"
CACHE = "model_lists"  # in app.extensions: each app (and each test app) has its own
FAILURE_SECONDS = 300  # a provider that gave no list is asked again after this long at most


@dataclass(frozen=True)
class ModelOption:
    """A model as the picker shows it: its batch price per million tokens, and who knows it."""

    name: str
    batch_price: Price | None
    priced: bool  # the price table names it (its own entry, or a dated version of one)
    listed: bool  # the provider's model list has it

    @property
    def known(self) -> bool:
        return self.priced or self.listed


@dataclass(frozen=True)
class Catalog:
    """Every model the price table or the provider names, by name; ``provider_listed`` is False when the provider
    gave no list (it has none, or could not be reached), so the price table alone is offered."""

    provider: str
    options: list[ModelOption]
    provider_listed: bool

    def closest(self, model: str) -> str | None:
        """The known name most like ``model`` (a typo's likely meaning), if one is close."""
        close = difflib.get_close_matches(model, [option.name for option in self.options], n=1)
        return close[0] if close else None


def catalog(provider: str | None = None) -> Catalog:
    """The models offered for ``provider`` (default: the configured one); raises ValidationFailed when that
    provider cannot be used here."""
    provider = provider or current_app.config["DEFAULT_PROVIDER"]
    _require_available(provider)
    listed = provider_models(provider)
    names = sorted(set(price_table().models_of(dialect(provider))) | (listed or frozenset()))
    return Catalog(provider, [_option(provider, name, listed) for name in names], listed is not None)


def describe(provider: str, model: str) -> ModelOption:
    """What is known of ``model`` at ``provider``."""
    return _option(provider, model, provider_models(provider))


def check_model(provider: str, model: str, *, confirmed: bool) -> bool:
    """Whether ``model`` is known (priced, or listed by the provider). An unknown model is refused unless
    ``confirmed``: raises ValidationFailed (422, code unknown_model) naming the model and the closest known name."""
    if describe(provider, model).known:
        return True
    if confirmed:
        return False
    close = catalog(provider).closest(model)
    hint = f" Did you mean {close}?" if close else ""
    raise ValidationFailed(
        f"unknown model {model!r}: neither the price table nor the provider's model list has it;{hint} "
        f"send {CONFIRM_FIELD}: true to use it anyway",
        details=[
            {
                "field": "model",
                "message": f"{model} is not in the price table or the provider's model list.{hint} "
                "Check the name, or confirm that you mean it.",
            },
            {"field": CONFIRM_FIELD, "message": "Confirm to use this model anyway"},
        ],
        code="unknown_model",
    )


def provider_models(provider: str) -> frozenset[str] | None:
    """The model ids the provider lists, or None when it gives none. Cached per app (MODEL_LIST_CACHE_SECONDS,
    a failure for at most FAILURE_SECONDS): pages ask on every view, the provider need not answer each time."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cache, lock = app.extensions.get(CACHE) or app.extensions.setdefault(CACHE, _new_cache(app))
    key = (provider, base_url(provider, app))
    with lock:
        if key in cache:
            return cache[key]
    models = _ask(provider, app)
    with lock:
        cache[key] = models
    return models


def _ask(provider: str, app: Flask) -> frozenset[str] | None:
    try:
        models = frozenset(get_provider(provider, app).list_models())
    except ProviderError as exc:
        log.warning("no model list from the %s provider (the price table is offered alone): %s", provider, exc)
        return None
    return models or None


def _new_cache(app: Flask) -> tuple[TLRUCache, threading.Lock]:
    def expires(key, models: frozenset[str] | None, now: float) -> float:
        seconds = app.config["MODEL_LIST_CACHE_SECONDS"]
        return now + (seconds if models is not None else min(seconds, FAILURE_SECONDS))

    return TLRUCache(maxsize=16, ttu=expires), threading.Lock()


def _option(provider: str, name: str, listed: frozenset[str] | None) -> ModelOption:
    """A model as ``provider`` offers it: priced only by an entry of its own API's models (a GPT price does not
    make a model known to Anthropic)."""
    table = price_table()
    own = table.provider_of(name) == dialect(provider)
    price = table.batch_price(name) if own else None
    return ModelOption(name, price, own and table.names(name), name in (listed or ()))


def _require_available(provider: str) -> None:
    if provider not in available_providers():
        message = f"provider {provider!r} is not available here"
        raise ValidationFailed(message, details=[{"field": "provider", "message": message}])
