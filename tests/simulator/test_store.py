"""The simulator's store on disk: files and batches expire after the retention."""

from __future__ import annotations

import time

from simulator import create_app as create_simulator_app
from simulator.store import Store
from tests.simulator.helpers import bearer, upload_with


def test_simulated_files_and_batches_expire(tmp_path):
    sim = create_simulator_app({"SIMULATOR_DIR": str(tmp_path / "sim"), "SIMULATOR_RETENTION_SECONDS": 1})
    client, key = sim.test_client(), sim.config["SIMULATOR_API_KEY"]
    file_id = upload_with(client, key)
    batch_id = client.post(
        "/simulator/v1/batches",
        headers=bearer(key),
        json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    ).json["id"]
    time.sleep(2.1)
    assert client.get(f"/simulator/v1/files/{file_id}/content", headers=bearer(key)).status_code == 404
    assert client.get("/simulator/v1/files", headers=bearer(key)).json["data"] == []
    store = Store(str(tmp_path / "sim"))
    assert store.list_files() == [] and store.list_batches() == []  # purged from disk by that call
    assert client.get(f"/simulator/v1/batches/{batch_id}", headers=bearer(key)).status_code == 404
