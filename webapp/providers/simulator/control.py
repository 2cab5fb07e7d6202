"""Test-only control endpoints: inject API faults and inspect the store (no API key needed)."""

from __future__ import annotations

from flask import jsonify, request

from .blueprint import bp
from .faults import add_fault, clear_faults, list_faults, parse_fault
from .params import json_object
from .settings import current_store, store_dir


@bp.post("/_control/faults")
def add_faults():
    fault = parse_fault(json_object(request.get_json(silent=True)))
    return jsonify({"faults": add_fault(current_store(), fault)})


@bp.delete("/_control/faults")
def delete_faults():
    clear_faults(current_store())
    return jsonify({"faults": []})


@bp.get("/_control/state")
def state():
    store = current_store()
    batches = store.list_batches()
    return jsonify({"dir": store_dir(), "files": len(store.list_files()), "batches": len(batches),
                    "faults": list_faults(store)})
