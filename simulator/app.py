"""A Flask app serving only the simulator, for tests and ``python -m simulator``."""

from __future__ import annotations

import secrets
import tempfile

from flask import Flask

from .anthropic import bp as anthropic_bp
from .openai import bp

URL_PREFIX = "/simulator/v1"
# The Anthropic SDK's base URL is this without "/v1" (it adds "/v1/messages/batches" itself).
ANTHROPIC_URL_PREFIX = "/simulator/anthropic/v1"


def create_app(config: dict | None = None) -> Flask:
    """Return an app with the simulator's OpenAI dialect at ``/simulator/v1`` and its Anthropic dialect at
    ``/simulator/anthropic/v1``; SIMULATOR_DIR defaults to a fresh temp dir and
    SIMULATOR_API_KEY, the key clients must send, to a new random one."""
    app = Flask(__name__)
    app.config.update(config or {})
    if not app.config.get("SIMULATOR_DIR"):
        app.config["SIMULATOR_DIR"] = tempfile.mkdtemp(prefix="simulator-")
    if not app.config.get("SIMULATOR_API_KEY"):
        app.config["SIMULATOR_API_KEY"] = "sim-" + secrets.token_urlsafe(24)
    app.register_blueprint(bp, url_prefix=URL_PREFIX)
    app.register_blueprint(anthropic_bp, url_prefix=ANTHROPIC_URL_PREFIX)
    return app
