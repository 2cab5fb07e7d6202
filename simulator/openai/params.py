"""Checks the real API applies synchronously to a create-batch call (everything else fails the batch later)."""

from __future__ import annotations

from .errors import APIError, invalid_value, missing_parameter
from .responses import ENDPOINTS

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


def json_object(data: object) -> dict:
    """Return ``data`` when the request carried a JSON object, else raise the API's 400."""
    if not isinstance(data, dict):
        raise APIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
        )
    return data


def create_params(data: object) -> dict:
    """Return the validated create-batch parameters, or raise APIError(400)."""
    data = json_object(data)
    for name in ("input_file_id", "endpoint", "completion_window"):
        if data.get(name) in (None, ""):
            raise missing_parameter(name)
    if not isinstance(data["input_file_id"], str):
        raise invalid_value("input_file_id", "Invalid type for 'input_file_id': expected a string.")
    if data["endpoint"] not in ENDPOINTS:
        supported = ", ".join(f"'{endpoint}'" for endpoint in ENDPOINTS)
        raise invalid_value("endpoint", f"Invalid value: '{data['endpoint']}'. Supported values are: {supported}.")
    if data["completion_window"] != "24h":
        raise invalid_value(
            "completion_window", f"Invalid value: '{data['completion_window']}'. Supported values are: '24h'."
        )
    return {
        "input_file_id": data["input_file_id"],
        "endpoint": data["endpoint"],
        "completion_window": "24h",
        "metadata": check_metadata(data.get("metadata")),
    }


def check_metadata(metadata: object) -> dict | None:
    """Return ``metadata`` if it fits the API's limits (16 pairs, keys <= 64, values <= 512 characters)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise invalid_value("metadata", "Invalid type for 'metadata': expected an object of string values.")
    if len(metadata) > METADATA_MAX_PAIRS:
        raise APIError(
            400,
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(metadata)} properties "
            "instead.",
            code="object_above_max_properties",
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY:
            raise APIError(
                400,
                f"Invalid 'metadata': key '{key[:20]}...' is longer than {METADATA_MAX_KEY} characters.",
                code="string_above_max_length",
                param="metadata",
            )
        if len(value) > METADATA_MAX_VALUE:
            raise APIError(
                400,
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {METADATA_MAX_VALUE}, but got a string with length {len(value)} instead.",
                code="string_above_max_length",
                param=f"metadata.{key}",
            )
    return metadata


def page_params(args, default_limit: int, max_limit: int) -> tuple[int, str | None]:
    """Return (limit, after) from a list call's query string."""
    raw = args.get("limit", str(default_limit))
    if not raw.isdigit() or not 1 <= int(raw) <= max_limit:
        raise invalid_value("limit", f"Invalid 'limit': expected an integer between 1 and {max_limit}.")
    return int(raw), args.get("after") or None
