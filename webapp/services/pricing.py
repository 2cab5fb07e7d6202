"""Prices per model from an editable table, and the estimated and actual cost of a job's tokens."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from flask import current_app

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "data" / "prices.json"
PER_TOKENS = Decimal(1_000_000)
DATED = re.compile(r"(?P<entry>.+)-\d{4}-\d{2}-\d{2}")  # a dated version of a model: gpt-4o-mini-2024-07-18


class PriceTableError(ValueError):
    """The price table file is unreadable or malformed."""


@dataclass(frozen=True)
class Price:
    input: Decimal
    cached_input: Decimal
    output: Decimal


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    batch_discount: Decimal

    def price_for(self, model: str) -> Price | None:
        """The price of ``model``: an exact entry, else the longest entry that prefixes it, else None."""
        if model in self.models:
            return self.models[model]
        matches = [name for name in self.models if model.startswith(name)]
        return self.models[max(matches, key=len)] if matches else None

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
        return Price(*(rate * self.batch_discount for rate in (price.input, price.cached_input, price.output)))

    def cost(self, model: str, prompt: int, completion: int, cached: int = 0) -> Decimal | None:
        """Batch cost in USD of the given tokens; None when the model has no price."""
        price = self.price_for(model)
        if price is None:
            return None
        uncached = max(prompt - cached, 0)
        total = uncached * price.input + cached * price.cached_input + completion * price.output
        return (total * self.batch_discount / PER_TOKENS).quantize(Decimal("0.00000001"))


def load_price_table(path: str | Path) -> PriceTable:
    """Read a price table JSON file; raises PriceTableError with the reason."""
    try:
        raw = json.loads(Path(path).read_text())
        models = {
            name: Price(*(Decimal(str(entry[key])) for key in ("input", "cached_input", "output")))
            for name, entry in raw["models"].items()
        }
        return PriceTable(models, Decimal(str(raw.get("batch_discount", 0.5))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
        raise PriceTableError(f"price table {path}: {exc}") from exc


@lru_cache(maxsize=8)
def _cached_table(path: str, mtime: float) -> PriceTable:
    return load_price_table(path)


def price_table() -> PriceTable:
    """The operator's table (PRICES_FILE) or the shipped one, re-read when the file changes."""
    path = current_app.config.get("PRICES_FILE") or str(DEFAULT_PRICES)
    return _cached_table(path, Path(path).stat().st_mtime)
