"""Request validation against botocore's ECS input shapes: JSON types, required members, enums.

Wrong JSON types are SerializationException (as AWS's JSON protocol answers); a missing
required member or a value outside its enum is InvalidParameterException. Unknown members
are ignored, as AWS does. Used by `sim/api.py` before any state method runs.
"""

from __future__ import annotations

from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from blox.sim import errors

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float, str),
    "blob": (str,),
}


def validate(value: Any, shape: Shape, *, path: str = "") -> None:
    """Raise an ECS error if `value` does not fit `shape`."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        _validate_structure(value, shape, path=path)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise errors.SerializationFault(f"Expected list at {path or 'input'}.")
        for i, item in enumerate(value):
            validate(item, shape.member, path=f"{path}[{i}]")
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise errors.SerializationFault(f"Expected map at {path or 'input'}.")
        for key, item in value.items():
            validate(item, shape.value, path=f"{path}.{key}")
    else:
        expected = _JSON_TYPES.get(kind, (object,))
        if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
            raise errors.SerializationFault(
                f"Unexpected value type at {path or 'input'}: expected {kind}."
            )
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            raise errors.InvalidParameter(
                f"Invalid value {value!r} for {path}: must be one of [{', '.join(enum)}]."
            )


def _validate_structure(value: Any, shape: StructureShape, *, path: str) -> None:
    if not isinstance(value, dict):
        raise errors.SerializationFault(f"Expected structure at {path or 'input'}.")
    for name in shape.required_members:
        if value.get(name) is None:
            raise errors.InvalidParameter(f"{path + '.' if path else ''}{name} must be specified.")
    members = shape.members
    for name, item in value.items():
        if name in members and item is not None:
            validate(item, members[name], path=f"{path}.{name}" if path else name)
