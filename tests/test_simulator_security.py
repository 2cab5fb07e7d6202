"""The app and its built-in simulator: only the app's own workers get in, fault injection only where allowed, off
beside a real provider unless asked for, and the installation id the provider sees reveals nothing."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import base_config
from tests.factories import new_job
from tests.simulated import provider_batches
from tests.simulator.helpers import LINE, bearer, upload_with
from webapp import create_app
from webapp.providers import available_providers, get_provider
from webapp.services import sync
from webapp.services.installation import install_id


def production_like(tmp_path, **environ):
    """An app configured as an operator would: the simulator's key derived, its control endpoints off."""
    config = base_config(tmp_path, ENVIRON={"SECRET_KEY": "a-secret-key", "LOG_LEVEL": "WARNING", **environ})
    for name in ("SIMULATOR_API_KEY", "SIMULATOR_CONTROL"):
        config.pop(name)
    return create_app(config)


def test_strangers_cannot_read_store_or_cancel_anything(tmp_path):
    app = production_like(tmp_path)
    client, key = app.test_client(), app.config["SIMULATOR_API_KEY"]
    file_id = upload_with(client, key)
    batch = client.post(
        "/simulator/v1/batches",
        headers=bearer(key),
        json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    ).json
    for stranger in (
        {},
        bearer("sk-anything"),
        bearer("simulator"),
        bearer(key[:-1]),
        bearer(key + "x"),
        {"Authorization": f"Basic {key}"},
    ):
        for method, path in (
            ("GET", f"/files/{file_id}/content"),
            ("GET", "/files"),
            ("GET", "/batches"),
            ("POST", f"/batches/{batch['id']}/cancel"),
            ("DELETE", f"/files/{file_id}"),
            ("POST", "/files"),
        ):
            response = client.open(f"/simulator/v1{path}", method=method, headers=stranger)
            assert response.status_code == 401, (stranger, method, path)
    assert client.get(f"/simulator/v1/files/{file_id}/content", headers=bearer(key)).data == LINE
    assert client.get(f"/simulator/v1/batches/{batch['id']}", headers=bearer(key)).json["status"] not in (
        "cancelling",
        "cancelled",
    )


def test_the_key_is_derived_from_the_secret_key_and_reveals_nothing_of_it(tmp_path):
    key = production_like(tmp_path).config["SIMULATOR_API_KEY"]
    assert len(key) == 64 and "a-secret-key" not in key
    assert key != hashlib.sha256(b"a-secret-key").hexdigest()
    assert production_like(tmp_path / "other").config["SIMULATOR_API_KEY"] == key  # every process agrees


def test_fault_injection_does_not_exist_unless_enabled(tmp_path):
    app = production_like(tmp_path)
    client, key = app.test_client(), app.config["SIMULATOR_API_KEY"]
    for headers in ({}, bearer(key)):
        assert client.post("/simulator/v1/_control/faults", headers=headers, json={"status": 500}).status_code == 404
        assert client.get("/simulator/v1/_control/state", headers=headers).status_code == 404
    assert client.get("/simulator/v1/files", headers=bearer(key)).status_code == 200  # no fault was stored

    enabled = production_like(tmp_path / "tests", SIMULATOR_CONTROL="true").test_client()
    assert enabled.post("/simulator/v1/_control/faults", json={"status": 500}).status_code == 401  # key needed


def test_beside_a_real_key_the_simulator_is_off_unless_enabled(tmp_path):
    app = production_like(tmp_path, OPENAI_API_KEY="sk-real")
    key = app.config["SIMULATOR_API_KEY"]
    assert app.test_client().get("/simulator/v1/files", headers=bearer(key)).status_code == 404
    with app.app_context():
        assert available_providers() == ["openai"]
        with pytest.raises(sync.ProviderError):
            get_provider("simulator")
    both = production_like(tmp_path / "both", OPENAI_API_KEY="sk-real", SIMULATOR_ENABLED="true")
    assert both.test_client().get("/simulator/v1/files", headers=bearer(key)).status_code == 200
    with both.app_context():
        assert available_providers() == ["openai", "simulator", "simulator-anthropic"]


def test_batches_carry_a_random_installation_id_not_one_derived_from_the_secret(app_ctx, simulator):
    legacy = hashlib.sha256(("install:" + app_ctx.config["SECRET_KEY"]).encode()).hexdigest()[:16]
    assert install_id() != legacy and len(install_id()) == 16
    job = new_job(count=2, submit=True)
    sync.sync_all()
    (remote,) = provider_batches(simulator)
    assert remote.metadata["install"] == install_id()
    assert job.batches[0].input_file_name.startswith(f"abp-{install_id()}-")


def test_no_provider_at_all_stops_start_up(tmp_path):
    from webapp.config import ConfigError, from_env

    with pytest.raises(ConfigError, match="no provider could run a job"):
        from_env(str(tmp_path), {"SIMULATOR_ENABLED": "false"})
