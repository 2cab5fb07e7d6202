"""Only the holder of the simulator's key gets in; fault injection exists only where it is switched on."""

from __future__ import annotations

import openai
import pytest

from simulator import create_app as create_simulator_app
from tests.conftest import Server
from tests.simulator.helpers import bearer


def test_the_standalone_simulator_makes_a_key_of_its_own(tmp_path):
    sim = create_simulator_app({"SIMULATOR_DIR": str(tmp_path)})
    key = sim.config["SIMULATOR_API_KEY"]
    assert len(key) > 20
    assert sim.test_client().get("/simulator/v1/files", headers=bearer(key)).status_code == 200
    server = Server(sim)
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{server.url}/simulator/v1", api_key="guess", max_retries=0).files.list()
    finally:
        server.stop()


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic sim-x", "sim-x", "Bearer sim-x2"])
def test_every_call_needs_the_key(tmp_path, header):
    sim = create_simulator_app({"SIMULATOR_DIR": str(tmp_path), "SIMULATOR_API_KEY": "sim-x"})
    headers = {"Authorization": header} if header else {}
    response = sim.test_client().get("/simulator/v1/batches", headers=headers)
    assert response.status_code == 401 and response.json["error"]["type"] == "invalid_request_error"


def test_the_scheme_is_any_case_and_the_key_exact(tmp_path):
    client = create_simulator_app({"SIMULATOR_DIR": str(tmp_path), "SIMULATOR_API_KEY": "sim-x"}).test_client()
    assert client.get("/simulator/v1/batches", headers={"Authorization": "bearer sim-x"}).status_code == 200
    assert client.get("/simulator/v1/batches", headers={"Authorization": "Bearer SIM-X"}).status_code == 401


def test_control_exists_only_when_switched_on(tmp_path):
    off = create_simulator_app({"SIMULATOR_DIR": str(tmp_path / "off"), "SIMULATOR_API_KEY": "k"}).test_client()
    assert off.post("/simulator/v1/_control/faults", headers=bearer("k"), json={"status": 500}).status_code == 404
    on = create_simulator_app(
        {"SIMULATOR_DIR": str(tmp_path / "on"), "SIMULATOR_API_KEY": "k", "SIMULATOR_CONTROL": True}
    ).test_client()
    assert on.post("/simulator/v1/_control/faults", json={"status": 500}).status_code == 401
    assert on.post("/simulator/v1/_control/faults", headers=bearer("k"), json={"status": 500}).status_code == 200
