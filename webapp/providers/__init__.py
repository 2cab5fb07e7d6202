"""Provider registry: picks the batch service for a job (OpenAI or a compatible service, Anthropic, or one of the
built-in simulator's dialects)."""

from __future__ import annotations

from flask import Flask, current_app

from webapp.providers.anthropic_provider import AnthropicProvider
from webapp.providers.base import BatchInfo, FileInfo, Provider, ProviderError
from webapp.providers.openai_provider import OpenAIProvider

OPENAI = "openai"
ANTHROPIC = "anthropic"
SIMULATOR = "simulator"  # the simulator's OpenAI dialect
SIMULATOR_ANTHROPIC = "simulator-anthropic"  # the simulator's Anthropic dialect
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
LABELS = {
    OPENAI: "OpenAI",
    ANTHROPIC: "Anthropic",
    SIMULATOR: "Simulator (built-in, no real model calls)",
    SIMULATOR_ANTHROPIC: "Simulator, Anthropic dialect (built-in, no real model calls)",
}
# Whose API each provider speaks, and so whose models and prices it offers.
DIALECTS = {OPENAI: OPENAI, SIMULATOR: OPENAI, ANTHROPIC: ANTHROPIC, SIMULATOR_ANTHROPIC: ANTHROPIC}
SIMULATED = frozenset({SIMULATOR, SIMULATOR_ANTHROPIC})

__all__ = [
    "BatchInfo",
    "FileInfo",
    "Provider",
    "ProviderError",
    "available_providers",
    "base_url",
    "dialect",
    "get_provider",
    "provider_info",
]


def available_providers(app: Flask | None = None) -> list[str]:
    """The providers a job may use here: OpenAI and Anthropic each with its API key; the simulator's two dialects
    when it is enabled (by default only without a key)."""
    app = app or current_app
    simulator = app.config.get("SIMULATOR_ENABLED")
    return [
        name
        for name, usable in (
            (OPENAI, app.config.get("OPENAI_API_KEY")),
            (ANTHROPIC, app.config.get("ANTHROPIC_API_KEY")),
            (SIMULATOR, simulator),
            (SIMULATOR_ANTHROPIC, simulator),
        )
        if usable
    ]


def get_provider(name: str, app: Flask | None = None) -> Provider:
    """Return a provider client; raises ProviderError (not retryable) when ``name`` cannot be used here."""
    app = app or current_app
    if name in SIMULATED:
        if not app.config.get("SIMULATOR_ENABLED"):
            raise ProviderError("the simulator is off here (SIMULATOR_ENABLED)", retryable=False)
        key = app.config["SIMULATOR_API_KEY"]
        if name == SIMULATOR_ANTHROPIC:
            return AnthropicProvider(name, api_key=key, base_url=base_url(name, app))
        return OpenAIProvider(name, api_key=key, base_url=base_url(name, app))
    if name == OPENAI:
        if not app.config.get("OPENAI_API_KEY"):
            raise ProviderError("the OpenAI provider needs OPENAI_API_KEY", retryable=False)
        return OpenAIProvider(OPENAI, api_key=app.config["OPENAI_API_KEY"], base_url=app.config.get("OPENAI_BASE_URL"))
    if name == ANTHROPIC:
        if not app.config.get("ANTHROPIC_API_KEY"):
            raise ProviderError("the Anthropic provider needs ANTHROPIC_API_KEY", retryable=False)
        return AnthropicProvider(ANTHROPIC, api_key=app.config["ANTHROPIC_API_KEY"], base_url=base_url(name, app))
    raise ProviderError(f"unknown provider {name!r}", retryable=False)


def base_url(name: str, app: Flask | None = None) -> str:
    """Where the provider ``name`` is reached. The simulator's Anthropic dialect is served beside its OpenAI one:
    ``SIMULATOR_BASE_URL`` with its ``/v1`` replaced by ``/anthropic`` (the SDK adds ``/v1/messages/...``)."""
    app = app or current_app
    if name == SIMULATOR:
        return app.config["SIMULATOR_BASE_URL"]
    if name == SIMULATOR_ANTHROPIC:
        return app.config["SIMULATOR_BASE_URL"].rstrip("/").removesuffix("/v1") + "/anthropic"
    if name == ANTHROPIC:
        return app.config.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_URL
    return app.config.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL


def dialect(name: str) -> str:
    """Whose API the provider ``name`` speaks: ``openai`` or ``anthropic`` (an unknown name: ``openai``)."""
    return DIALECTS.get(name, OPENAI)


def provider_info(app: Flask | None = None) -> dict:
    """What /health and the pages show about the configured provider (never the key itself)."""
    app = app or current_app
    default = app.config["DEFAULT_PROVIDER"]
    return {
        "default": default,
        "label": LABELS[default],
        "base_url": base_url(default, app),
        "api_key_configured": bool(app.config.get("OPENAI_API_KEY") or app.config.get("ANTHROPIC_API_KEY")),
        "available": available_providers(app),
    }
