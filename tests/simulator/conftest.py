"""A simulator served over HTTP per test, with fast timings."""

from __future__ import annotations

import threading

import openai
import pytest
from werkzeug.serving import make_server

from simulator import create_app as create_simulator_app
from tests.simulator.helpers import FAST, sim_client_for


@pytest.fixture
def sim_serve(tmp_path):
    """Start a simulator server with FAST timings plus overrides; return its base URL."""
    servers = []

    def serve(**overrides) -> str:
        config = {**FAST, "SIMULATOR_DIR": str(tmp_path / f"sim{len(servers)}"), **overrides}
        server = make_server("127.0.0.1", 0, create_simulator_app(config), threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/simulator/v1"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sim_url(sim_serve) -> str:
    return sim_serve()


@pytest.fixture
def sim_client(sim_url) -> openai.OpenAI:
    return sim_client_for(sim_url)
