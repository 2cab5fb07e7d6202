"""Provider registry: picks the batch service for a job (OpenAI-compatible, or the built-in simulator)."""

from __future__ import annotations

from flask import Flask, current_app

from webapp.providers.base import BatchInfo, FileInfo, Provider, ProviderError
from webapp.providers.openai_provider import OpenAIProvider

OPENAI = "openai"
SIMULATOR = "simulator"
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
LABELS = {OPENAI: "OpenAI", SIMULATOR: "Simulator (built-in, no real model calls)"}

__all__ = [
    "BatchInfo",
    "FileInfo",
    "Provider",
    "ProviderError",
    "available_providers",
    "base_url",
    "get_provider",
    "provider_info",
]


def available_providers(app: Flask | None = None) -> list[str]:
    """The providers a job may use here: OpenAI with an API key; the simulator when enabled (by default only
    without a key)."""
    app = app or current_app
    return [
        name
        for name, usable in (
            (OPENAI, app.config.get("OPENAI_API_KEY")),
            (SIMULATOR, app.config.get("SIMULATOR_ENABLED")),
        )
        if usable
    ]


def get_provider(name: str, app: Flask | None = None) -> Provider:
    """Return a provider client; raises ProviderError (not retryable) when ``name`` cannot be used here."""
    app = app or current_app
    if name == SIMULATOR:
        if not app.config.get("SIMULATOR_ENABLED"):
            raise ProviderError("the simulator is off here (SIMULATOR_ENABLED)", retryable=False)
        return OpenAIProvider(
            SIMULATOR, api_key=app.config["SIMULATOR_API_KEY"], base_url=app.config["SIMULATOR_BASE_URL"]
        )
    if name == OPENAI:
        if not app.config.get("OPENAI_API_KEY"):
            raise ProviderError("the OpenAI provider needs OPENAI_API_KEY", retryable=False)
        return OpenAIProvider(OPENAI, api_key=app.config["OPENAI_API_KEY"], base_url=app.config.get("OPENAI_BASE_URL"))
    raise ProviderError(f"unknown provider {name!r}", retryable=False)


def base_url(name: str, app: Flask | None = None) -> str:
    """Where the provider ``name`` is reached."""
    app = app or current_app
    if name == SIMULATOR:
        return app.config["SIMULATOR_BASE_URL"]
    return app.config.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL


def provider_info(app: Flask | None = None) -> dict:
    """What /health and the pages show about the configured provider (never the key itself)."""
    app = app or current_app
    default = app.config["DEFAULT_PROVIDER"]
    return {
        "default": default,
        "label": LABELS[default],
        "base_url": base_url(default, app),
        "api_key_configured": bool(app.config.get("OPENAI_API_KEY")),
        "available": available_providers(app),
    }
