"""Template helpers: how numbers, money, times, statuses and JSON read on the pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from webapp import __version__
from webapp.dashboard import bp
from webapp.providers import LABELS, SIMULATOR, provider_info

STATUS_WORDS = {"completed_with_errors": "completed with errors", "in_flight": "in flight"}


@bp.app_context_processor
def layout_context() -> dict:
    """What the layout shows on every page: the configured provider and the version."""
    info = provider_info()
    return {
        "provider": info,
        "provider_is_simulator": info["default"] == SIMULATOR,
        "app_version": __version__,
        "provider_labels": LABELS,
        "provider_names": {name: label.split(" (")[0] for name, label in LABELS.items()},
    }


@bp.app_template_filter()
def number(value) -> str:
    return "—" if value is None else f"{value:,}"


@bp.app_template_filter()
def money(value: Decimal | float | None) -> str:
    """US dollars with enough decimals for fractions of a cent; an em dash when unknown."""
    if value is None:
        return "—"
    value = Decimal(str(value))
    places = 2 if value >= 1 or value == 0 else 4 if value >= Decimal("0.01") else 6
    return f"${value:,.{places}f}"


@bp.app_template_filter()
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@bp.app_template_filter()
def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


@bp.app_template_filter()
def duration(value: timedelta | None) -> str:
    """A span in the two largest units a person would use: "2 h 5 min", "40 s"."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{amount} {unit}" for amount, unit in parts if amount][:2]
    return " ".join(shown) or "0 s"


@bp.app_template_filter()
def since(value: datetime | None) -> timedelta | None:
    return None if value is None else datetime.now(UTC) - value


@bp.app_template_filter()
def when(value: datetime | None, seconds: bool = False) -> str:
    pattern = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return "—" if value is None else value.astimezone(UTC).strftime(pattern)


@bp.app_template_filter()
def prompt_text(body: dict) -> str:
    """The text a person wrote for a request: its last user message, or its input or prompt."""
    messages = body.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    value = body.get("input", body.get("prompt", ""))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@bp.app_template_filter()
def pretty_json(value) -> str:
    """Indented JSON as plain text: the template escapes it like any other text."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@bp.app_template_filter()
def rate(value: Decimal | None) -> str:
    """A price per million tokens, with the decimals it has and at least two ($0.075, $0.30, $5.00)."""
    if value is None:
        return "—"
    whole, _, decimals = f"{Decimal(value).normalize():f}".partition(".")
    return f"${int(whole):,}.{decimals.ljust(2, '0')}"
