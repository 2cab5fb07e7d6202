"""Prices per model from an editable table, and the estimated and actual cost of a job's tokens."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from flask import current_app

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "data" / "prices.json"
PER_TOKENS = Decimal(1_000_000)
# A dated version of a model: gpt-4o-mini-2024-07-18 (OpenAI), claude-haiku-4-5-20251001 (Anthropic).
DATED = re.compile(r"(?P<entry>.+)-(\d{4}-\d{2}-\d{2}|\d{8})")
OPENAI = "openai"


class PriceTableError(ValueError):
    """The price table file is unreadable or malformed."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens: uncached input, cache reads, output, and cache writes (Anthropic's 5-minute prompt
    cache; a provider without cache writes charges them as input)."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    batch_discount: Decimal
    providers: dict[str, str] = field(default_factory=dict)  # model -> whose API serves it (default openai)

    def entry_for(self, model: str) -> str | None:
        """The table's entry that prices ``model``: its own, else the longest that prefixes it, else None."""
        if model in self.models:
            return model
        matches = [name for name in self.models if model.startswith(name)]
        return max(matches, key=len) if matches else None

    def price_for(self, model: str) -> Price | None:
        """The price of ``model``: an exact entry, else the longest entry that prefixes it, else None."""
        entry = self.entry_for(model)
        return self.models[entry] if entry else None

    def provider_of(self, model: str) -> str | None:
        """Whose API (``openai``, ``anthropic``) serves ``model``, by its entry; None when it has none."""
        entry = self.entry_for(model)
        return self.providers.get(entry, OPENAI) if entry else None

    def models_of(self, provider: str) -> list[str]:
        """The entries of one provider's models (``openai``, ``anthropic``)."""
        return [name for name in self.models if self.providers.get(name, OPENAI) == provider]

    def names(self, model: str) -> bool:
        """True when the table has ``model``'s own entry or ``model`` is a dated version of one; a name that merely
        starts like an entry (``gpt-4o-minii``) is priced as that entry but is not named here."""
        dated = DATED.fullmatch(model)
        return model in self.models or bool(dated and dated["entry"] in self.models)

    def batch_price(self, model: str) -> Price | None:
        """What ``model`` costs per million tokens in a batch (the batch discount applied); None without a price."""
        price = self.price_for(model)
        if price is None:
            return None
        rates = (price.input, price.cached_input, price.output, price.cache_write)
        return Price(*(rate * self.batch_discount for rate in rates))

    def cost(self, model: str, prompt: int, completion: int, cached: int = 0, cache_write: int = 0) -> Decimal | None:
        """Batch cost in USD of the given tokens (``prompt`` counts the ``cached`` reads and the ``cache_write``
        tokens too, as OpenAI's usage does); None when the model has no price."""
        price = self.price_for(model)
        if price is None:
            return None
        uncached = max(prompt - cached - cache_write, 0)
        total = (
            uncached * price.input
            + cached * price.cached_input
            + cache_write * price.cache_write
            + completion * price.output
        )
        return (total * self.batch_discount / PER_TOKENS).quantize(Decimal("0.00000001"))


def load_price_table(path: str | Path) -> PriceTable:
    """Read a price table JSON file; raises PriceTableError with the reason."""
    try:
        raw = json.loads(Path(path).read_text())
        models = {name: _price(entry) for name, entry in raw["models"].items()}
        providers = {name: str(entry["provider"]) for name, entry in raw["models"].items() if "provider" in entry}
        return PriceTable(models, Decimal(str(raw.get("batch_discount", 0.5))), providers)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
        raise PriceTableError(f"price table {path}: {exc}") from exc


def _price(entry: dict) -> Price:
    """An entry's rates; ``cache_write`` defaults to the input rate (OpenAI has no cache-write price)."""
    rate = {key: Decimal(str(entry[key])) for key in ("input", "cached_input", "output")}
    return Price(**rate, cache_write=Decimal(str(entry.get("cache_write", entry["input"]))))


@lru_cache(maxsize=8)
def _cached_table(path: str, mtime: float) -> PriceTable:
    return load_price_table(path)


def price_table() -> PriceTable:
    """The operator's table (PRICES_FILE) or the shipped one, re-read when the file changes."""
    path = current_app.config.get("PRICES_FILE") or str(DEFAULT_PRICES)
    return _cached_table(path, Path(path).stat().st_mtime)
