"""Test-only control endpoints (with SIMULATOR_CONTROL): inject API faults and inspect the store."""

from __future__ import annotations

from flask import jsonify, request

from ..faults import FaultError, add_fault, clear_faults, list_faults, parse_fault
from ..settings import current_store, store_dir
from .blueprint import bp
from .errors import invalid_value, missing_parameter
from .params import json_object


@bp.post("/_control/faults")
def add_faults():
    try:
        fault = parse_fault(json_object(request.get_json(silent=True)))
    except FaultError as exc:
        raise (missing_parameter(exc.field) if exc.missing else invalid_value(exc.field, str(exc))) from None
    return jsonify({"faults": add_fault(current_store(), fault)})


@bp.delete("/_control/faults")
def delete_faults():
    clear_faults(current_store())
    return jsonify({"faults": []})


@bp.get("/_control/state")
def state():
    store = current_store()
    batches = store.list_batches(None)  # every dialect's
    return jsonify(
        {"dir": store_dir(), "files": len(store.list_files()), "batches": len(batches), "faults": list_faults(store)}
    )
