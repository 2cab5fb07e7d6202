"""Files API views: upload (streamed to disk), retrieve, list, download (streamed), delete."""

from __future__ import annotations

import os

from flask import jsonify, request, send_file

from ..settings import current_store, load_settings
from .blueprint import bp
from .errors import APIError, invalid_value, missing_parameter, not_found
from .params import page_params

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@bp.post("/files")
def upload_file():
    upload, purpose = request.files.get("file"), request.form.get("purpose")
    if upload is None:
        raise missing_parameter("file")
    if not purpose:
        raise missing_parameter("purpose")
    if purpose not in PURPOSES:
        raise invalid_value(
            "purpose",
            f"Invalid value: '{purpose}'. Supported values are: " + ", ".join(f"'{p}'" for p in PURPOSES) + ".",
        )
    filename = upload.filename or "upload.jsonl"
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise APIError(400, "Invalid file format for Batch API. Must be .jsonl", param="file")
    limit = load_settings().max_file_bytes if purpose == "batch" else None

    def write(path: str) -> None:
        upload.save(path)  # chunked copy from Werkzeug's spooled temp file: never the whole file in memory
        if limit is not None and os.path.getsize(path) > limit:
            raise APIError(400, f"File is too large: batch input files may be at most {limit} bytes.", param="file")

    return jsonify(current_store().add_file(filename, purpose, write))


@bp.get("/files")
def list_files():
    limit, after = page_params(request.args, default_limit=10_000, max_limit=10_000)
    purpose, order = request.args.get("purpose"), request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_value("order", "order must be 'asc' or 'desc'.")
    metas = [m for m in current_store().list_files() if purpose in (None, m["purpose"])]
    metas.sort(key=lambda m: (m["created_at"], m["id"]), reverse=order == "desc")
    ids = [m["id"] for m in metas]
    start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
    page = metas[start : start + limit]
    return jsonify(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(metas),
        }
    )


@bp.get("/files/<file_id>")
def retrieve_file(file_id: str):
    return jsonify(_meta(file_id))


@bp.get("/files/<file_id>/content")
def file_content(file_id: str):
    meta = _meta(file_id)
    try:
        return send_file(
            current_store().file_path(file_id),
            mimetype="application/octet-stream",
            download_name=meta["filename"],
            conditional=False,
        )
    except FileNotFoundError:
        raise not_found("File", file_id) from None  # deleted between the lookup and the read


@bp.delete("/files/<file_id>")
def delete_file(file_id: str):
    _meta(file_id)  # an unknown or expired file is not found
    if not current_store().delete_file(file_id):
        raise not_found("File", file_id)
    return jsonify({"id": file_id, "object": "file", "deleted": True})


def _meta(file_id: str) -> dict:
    meta = current_store().file_meta(file_id)
    if meta is None:
        raise not_found("File", file_id)
    return meta
