"""Batches API views: create, retrieve, list, cancel."""

from __future__ import annotations

import time

from flask import jsonify, request

from ..settings import current_store, load_settings
from . import lifecycle
from .blueprint import bp
from .params import create_params, page_params


@bp.post("/batches")
def create_batch():
    params = create_params(request.get_json(silent=True))
    return jsonify(lifecycle.create_batch(current_store(), params, time.time(), load_settings()))


@bp.get("/batches")
def list_batches():
    limit, after = page_params(request.args, default_limit=20, max_limit=100)
    return jsonify(lifecycle.list_batches(current_store(), limit, after, time.time(), load_settings()))


@bp.get("/batches/<batch_id>")
def retrieve_batch(batch_id: str):
    return jsonify(lifecycle.get_batch(current_store(), batch_id, time.time(), load_settings()))


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    return jsonify(lifecycle.cancel_batch(current_store(), batch_id, time.time(), load_settings()))
