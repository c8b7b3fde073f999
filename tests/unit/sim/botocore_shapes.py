"""Check a JSON response body against botocore's ECS output shape, key by key and type by type."""

from __future__ import annotations

import json
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.parsers import create_parser

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float),
}


def problems(value: Any, shape: Shape, path: str = "$") -> list[str]:
    """Every place where `value` (parsed JSON) does not fit `shape`; empty when it fits."""
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{path}: expected object"]
        found = [f"{path}.{k}: not in {shape.name}" for k in value if k not in shape.members]
        found += [f"{path}.{k}: required" for k in shape.required_members if k not in value]
        for key, item in value.items():
            if key in shape.members:
                found += problems(item, shape.members[key], f"{path}.{key}")
        return found
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{path}: expected list"]
        return [
            p for i, item in enumerate(value) for p in problems(item, shape.member, f"{path}[{i}]")
        ]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{path}: expected map"]
        return [p for k, item in value.items() for p in problems(item, shape.value, f"{path}.{k}")]
    expected = JSON_TYPES.get(shape.type_name, (object,))
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        return [f"{path}: {value!r} is not {shape.type_name}"]
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        return [f"{path}: {value!r} not in enum"]
    return []


def check_response(body: bytes, shape: StructureShape | None) -> dict[str, Any]:
    """Assert `body` fits `shape` and botocore's own JSON parser accepts it; return it parsed."""
    assert shape is not None
    assert problems(json.loads(body), shape) == []
    response = {"body": body, "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("json").parse(response, shape)
    return parsed
