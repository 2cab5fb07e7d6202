"""Deterministic instances of a JSON Schema, for simulated structured outputs."""

from __future__ import annotations

import hashlib
import math
import uuid

STRING_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "simulated@example.com",
    "uri": "https://example.com/simulated",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}


def instance_for(schema: dict, seed: str) -> object:
    """Return a value satisfying ``schema`` (types, properties, enums, bounds; not ``pattern``).

    ``seed`` makes choices such as enum members vary by request but never between runs.
    """
    return _value(schema, schema, seed, "$")


def _pick(seed: str, path: str, count: int) -> int:
    digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _resolve(root: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    while isinstance(ref, str) and ref.startswith("#"):
        node: object = root
        for part in filter(None, ref[1:].split("/")):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        schema = node if isinstance(node, dict) else {}
        ref = schema.get("$ref")
    return schema


def _value(schema: object, root: dict, seed: str, path: str) -> object:
    if not isinstance(schema, dict):
        return None
    schema = _resolve(root, schema)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][_pick(seed, path, len(schema["enum"]))]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _value(_first_non_null(schema[key], root), root, seed, path)
    kind = _type_of(schema)
    builder = BUILDERS.get(kind) if kind else None
    return builder(schema, root, seed, path) if builder else None


def _first_non_null(options: list, root: dict) -> dict:
    for option in options:
        if isinstance(option, dict) and _resolve(root, option).get("type") != "null":
            return option
    return options[0]


def _type_of(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    return kind


def _object(schema, root, seed, path):
    properties = schema.get("properties") or {}
    return {name: _value(sub, root, seed, f"{path}.{name}") for name, sub in properties.items()}


def _array(schema, root, seed, path):
    prefix = schema.get("prefixItems") or []
    count = max(int(schema.get("minItems", 1)), len(prefix))
    if "maxItems" in schema:
        count = min(count, int(schema["maxItems"]))
    items = [prefix[i] if i < len(prefix) else schema.get("items", {}) for i in range(count)]
    return [_value(item, root, seed, f"{path}[{i}]") for i, item in enumerate(items)]


def _string(schema, root, seed, path):
    if schema.get("format") == "uuid":
        return str(uuid.UUID(hashlib.md5(f"{seed}:{path}".encode()).hexdigest()))
    text = STRING_FORMATS.get(schema.get("format"), f"simulated {path.rsplit('.', 1)[-1]}")
    minimum, maximum = int(schema.get("minLength", 0)), schema.get("maxLength")
    text = text.ljust(minimum, "x")
    return text[: int(maximum)] if maximum is not None else text


def _bound(schema, inclusive: str, exclusive: str):
    """Return (value, is_exclusive) for one side; draft-4 boolean exclusives are read as the draft-6 form."""
    if isinstance(schema.get(exclusive), (int, float)) and not isinstance(schema.get(exclusive), bool):
        return schema[exclusive], True
    if inclusive in schema:
        return schema[inclusive], schema.get(exclusive) is True
    return None, False


def _number(schema, root, seed, path):
    (low, low_ex), (high, high_ex) = (
        _bound(schema, "minimum", "exclusiveMinimum"),
        _bound(schema, "maximum", "exclusiveMaximum"),
    )
    if low is not None and high is not None:
        return (low + high) / 2 if (low_ex or high_ex) else float(low)
    if low is not None:
        return low + 1.0 if low_ex else float(low)
    if high is not None:
        return high - 1.0 if high_ex else float(high)
    return float(_pick(seed, path, 100)) / 4


def _integer(schema, root, seed, path):
    (low, low_ex), (high, high_ex) = (
        _bound(schema, "minimum", "exclusiveMinimum"),
        _bound(schema, "maximum", "exclusiveMaximum"),
    )
    low = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
    high = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
    if low is None and high is None:
        return _pick(seed, path, 100)
    if low is None or high is None:
        return high if low is None else low
    return low + _pick(seed, path, max(1, high - low + 1))


BUILDERS = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": lambda schema, root, seed, path: _pick(seed, path, 2) == 0,
    "null": lambda schema, root, seed, path: None,
}
