"""Template helpers: how numbers, money, times, statuses and JSON read on the pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import current_app

from simulator.settings import load_settings as simulator_settings
from webapp import error_words, words
from webapp.about import __version__
from webapp.dashboard.blueprint import bp
from webapp.providers import LABELS, SIMULATED, provider_info

STATUS_WORDS = {"completed_with_errors": "completed with errors", "in_flight": "in flight"}


ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with a byte order mark, as Excel saves it)",
    "cp1252": "Windows-1252 (Western European, as older Excel versions save it)",
    "latin-1": "Latin-1 (Western European)",
    "iso-8859-1": "Latin-1 (Western European)",
}


@bp.app_context_processor
def layout_context() -> dict:
    """What the layout shows on every page: the configured provider and the version."""
    info = provider_info()
    return {
        "provider": info,
        "provider_is_simulator": info["default"] in SIMULATED,
        "simulated_providers": SIMULATED,
        "app_version": __version__,
        "provider_labels": LABELS,
        "provider_names": {name: label.split(" (")[0] for name, label in LABELS.items()},
    }


@bp.app_template_global()
def explain_error(code: str | None, status_code: int | None = None) -> error_words.ErrorWords:
    """A request's error code in words (macros are imported without the context: a global reaches them)."""
    return error_words.explain(code, status_code)


@bp.app_template_global()
def simulator_timing() -> dict[str, float]:
    """How long a simulated job takes, from the settings: seconds a batch spends at the simulator (validating,
    in progress, finalizing) and between the app's checks of running batches."""
    simulated = simulator_settings()
    batch = simulated.validating + simulated.in_progress + simulated.finalizing
    return {"batch": round(batch, 1), "check": float(current_app.config["SYNC_INTERVAL_SECONDS"])}


@bp.app_template_filter()
def rows_named(numbers: list[int], total: int) -> str:
    """``{{ numbers|rows_named(total) }}``: "rows 4, 9, 12, …"."""
    return words.rows_named(numbers, total)


@bp.app_template_filter()
def count_of(count: int | None, singular: str, plural: str | None = None) -> str:
    """``{{ n|count_of("request") }}``: "1 request", "1,200 requests"."""
    return words.count_of(count or 0, singular, plural)


@bp.app_template_filter()
def encoding_words(encoding: str | None) -> str:
    """A file's text encoding as a person knows it: "UTF-8", "Windows-1252 (Western European, ...)"."""
    return ENCODINGS.get((encoding or "").lower(), encoding or "unknown")


@bp.app_template_filter()
def seconds(value: float) -> str:
    """``7.0`` -> "7", ``0.5`` -> "0.5": seconds without a useless decimal."""
    return f"{value:g}"


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
def until(value: datetime | None) -> timedelta | None:
    return None if value is None else value - datetime.now(UTC)


@bp.app_template_filter()
def when(value: datetime | None, seconds: bool = False) -> str:
    pattern = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return "—" if value is None else value.astimezone(UTC).strftime(pattern)


@bp.app_template_filter()
def short_when(value: datetime | None) -> str:
    """A date in a narrow column: "30 Nov 06:35" this year, "30 Nov 2025" before (UTC)."""
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    return value.strftime("%-d %b %H:%M" if value.year == datetime.now(UTC).year else "%-d %b %Y")


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
