"""A minimal Flask app serving only the simulator, for tests and ``python -m webapp.providers.simulator``."""

from __future__ import annotations

import tempfile

from flask import Flask

URL_PREFIX = "/simulator/v1"


def create_simulator_app(config: dict | None = None) -> Flask:
    """Return an app with the simulator at ``/simulator/v1``; SIMULATOR_DIR defaults to a fresh temp dir."""
    from . import bp

    app = Flask(__name__)
    app.config.update(config or {})
    if not app.config.get("SIMULATOR_DIR"):
        app.config["SIMULATOR_DIR"] = tempfile.mkdtemp(prefix="simulator-")
    app.register_blueprint(bp, url_prefix=URL_PREFIX)
    return app
