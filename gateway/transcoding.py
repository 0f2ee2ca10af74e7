"""HTTP <-> protobuf: the JSON body, path variables and query parameters into a request message;
a response message back to JSON. Unknown fields are refused, never silently dropped.
"""

import base64
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.problems import invalid
from gateway.routes import Route

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def request_of(
    route: Route,
    *,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message for one HTTP call; a 400 problem for anything it cannot place."""
    descriptor = route.request_class.DESCRIPTOR
    values: dict[str, Any] = {}
    bound: set[str] = set(path_params)
    if route.body == "*":
        values = _object_of(body)
        check_known_fields(values, descriptor)
        values = _proto_names(values, descriptor)
    elif route.body:
        payload = _json_of(body) if body.strip() else {}
        field = _field_at(descriptor, route.body)
        if field.message_type is not None and not _is_well_known(field.message_type):
            if not isinstance(payload, dict):
                raise invalid("the request body must be a JSON object")
            check_known_fields(payload, field.message_type, prefix=route.body)
        _place(values, route.body, payload)
        bound.add(route.body)
    for field_path, value in path_params.items():
        _place_path_value(values, descriptor, field_path, value)
    if route.body != "*":
        _place_query(values, descriptor, query, bound)
    message = route.request_class()
    try:
        json_format.ParseDict(values, message)
    except json_format.ParseError as error:
        raise invalid(_first_line(str(error))) from error
    return message


def json_of(message: Message) -> dict[str, Any]:
    """A response message as the API's JSON: proto field names, every field present.

    The same dict as json_format.MessageToDict(preserving_proto_field_name=True,
    always_print_fields_with_no_presence=True) (a test holds them equal for every message of
    the API), about ten times faster: each message type's fields are planned once.
    """
    return _message_json(message)  # type: ignore[return-value]


Converter = Callable[[Any], Any]
# Message full name -> (field name, has presence, converter) for each field.
_PLANS: dict[str, list[tuple[str, bool, Converter]]] = {}
_INT64 = {
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
}


def _message_json(message: Message) -> Any:
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp_json(message.seconds, message.nanos)  # type: ignore[attr-defined]
    if descriptor.full_name == "google.protobuf.Duration":
        return message.ToJsonString()  # type: ignore[attr-defined]
    if descriptor.file.package == "google.protobuf":  # wrappers, Struct, Any, ...: rare
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        plan = _PLANS[descriptor.full_name] = [
            (f.name, f.has_presence, _field_converter(f)) for f in descriptor.fields
        ]
    return {
        name: convert(getattr(message, name))
        for name, presence, convert in plan
        if not presence or message.HasField(name)
    }


@functools.lru_cache(maxsize=65_536)
def _timestamp_json(seconds: int, nanos: int) -> str:
    # Lists show the same records again and again; formatting is most of their cost.
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToJsonString()


def _field_converter(field: FieldDescriptor) -> Converter:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = _value_converter(field.message_type.fields_by_name["value"])
        return lambda entries: {_map_key(k): value(v) for k, v in entries.items()}
    one = _value_converter(field)
    if field.is_repeated:
        return lambda values: [one(v) for v in values]
    return one


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _value_converter(field: FieldDescriptor) -> Converter:
    kind = field.cpp_type
    if kind == FieldDescriptor.CPPTYPE_MESSAGE:
        return _message_json
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return lambda value: None
        names = {v.number: v.name for v in field.enum_type.values}
        return lambda value: names.get(value, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode()
    if kind in _INT64:
        return str
    if kind in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return lambda value: _float_json(field, value)
    return _same


def _same(value: Any) -> Any:
    return value


def _float_json(field: FieldDescriptor, value: float) -> Any:
    # Non-finite numbers and float32 rounding as json_format has them.
    return json_format._Printer()._FieldToJsonObject(field, value)  # noqa: SLF001


def _json_of(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise invalid(f"the request body is not valid JSON: {error}") from error


def _object_of(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    payload = _json_of(body)
    if not isinstance(payload, dict):
        raise invalid("the request body must be a JSON object")
    return payload


def check_known_fields(values: Mapping[str, Any], descriptor: Descriptor, prefix: str = "") -> None:
    """Refuse the first field `descriptor` does not have, naming it by its full path."""
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        field = _field_named(descriptor, key)
        if field is None:
            raise invalid(f'unknown field "{path}" in {descriptor.name}')
        message_type = field.message_type
        if message_type is None or _is_well_known(message_type):
            continue
        if message_type.GetOptions().map_entry:
            value_type = message_type.fields_by_name["value"].message_type
            if value_type is None or _is_well_known(value_type) or not isinstance(value, dict):
                continue
            for map_key, item in value.items():
                if isinstance(item, dict):
                    check_known_fields(item, value_type, f"{path}[{map_key}]")
        elif _is_repeated(field) and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    check_known_fields(item, message_type, f"{path}[{index}]")
        elif isinstance(value, dict):
            check_known_fields(value, message_type, path)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_well_known(descriptor: Descriptor) -> bool:
    """Well-known types have their own JSON forms (Timestamp as a string, Struct as any object)."""
    return descriptor.full_name.startswith("google.protobuf.")


def _field_named(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    field = descriptor.fields_by_name.get(name)
    if field is not None:
        return field
    return next((f for f in descriptor.fields if f.json_name == name), None)


def _proto_names(values: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    """Top-level keys by proto name, so path and query values meet body values on one key."""
    named: dict[str, Any] = {}
    for key, value in values.items():
        field = _field_named(descriptor, key)
        name = field.name if field is not None else key
        if name in named:
            raise invalid(f'field "{name}" is given twice')
        named[name] = value
    return named


def _field_at(descriptor: Descriptor, field_path: str) -> FieldDescriptor:
    field: FieldDescriptor | None = None
    current: Descriptor | None = descriptor
    for name in field_path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            raise invalid(f'unknown field "{field_path}" in {descriptor.name}')
        current = field.message_type
    assert field is not None
    return field


def _place(values: dict[str, Any], field_path: str, value: Any) -> None:
    *parents, leaf = field_path.split(".")
    target = values
    for name in parents:
        child = target.setdefault(name, {})
        if not isinstance(child, dict):
            raise invalid(f'field "{name}" must be an object')
        target = child
    target[leaf] = value


def _lookup(values: Mapping[str, Any], field_path: str) -> Any:
    current: Any = values
    for name in field_path.split("."):
        if not isinstance(current, Mapping) or name not in current:
            return None
        current = current[name]
    return current


def _place_path_value(
    values: dict[str, Any], descriptor: Descriptor, field_path: str, raw: str
) -> None:
    field = _field_at(descriptor, field_path)
    value = _scalar(field, raw, field_path)
    given = _lookup(values, field_path)
    if given is not None and given != "" and str(given) != str(value):
        raise invalid(
            f'"{field_path}" is {given!r} in the body but {raw!r} in the path; they must agree'
        )
    _place(values, field_path, value)


def _place_query(
    values: dict[str, Any],
    descriptor: Descriptor,
    query: Iterable[tuple[str, str]],
    bound: set[str],
) -> None:
    """Query parameters fill fields the path and body leave: `page_size=10&type=x&ids=a&ids=b`."""
    repeated: dict[str, list[Any]] = {}
    for key, raw in query:
        path, field = _query_field(descriptor, key)
        if path in bound or any(path.startswith(b + ".") for b in bound):
            raise invalid(f'query parameter "{key}" is already given by the path or body')
        if _is_repeated(field):
            repeated.setdefault(path, []).append(_scalar(field, raw, key))
        elif _lookup(values, path) is not None:
            raise invalid(f'query parameter "{key}" is given more than once')
        else:
            _place(values, path, _scalar(field, raw, key))
    for path, items in repeated.items():
        _place(values, path, items)


def _query_field(descriptor: Descriptor, key: str) -> tuple[str, FieldDescriptor]:
    """The field a query parameter names (proto or JSON names, dotted for nested fields)."""
    current: Descriptor | None = descriptor
    field: FieldDescriptor | None = None
    names = []
    for name in key.split("."):
        if current is None or (current is not descriptor and _is_well_known(current)):
            field = None
        else:
            field = _field_named(current, name)
        if field is None:
            raise invalid(f'unknown query parameter "{key}" for {descriptor.name}')
        names.append(field.name)
        current = field.message_type
    assert field is not None
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        raise invalid(f'query parameter "{key}" names a map; send it in a request body')
    if field.message_type is not None and not _is_well_known(field.message_type):
        raise invalid(f'query parameter "{key}" names a message; name one of its fields')
    return ".".join(names), field


def _scalar(field: FieldDescriptor, raw: str, name: str) -> Any:
    """A path or query string as the JSON value json_format expects for `field`."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise invalid(f'"{name}" must be true or false, not {raw!r}')
    return raw


def _first_line(message: str) -> str:
    return message.splitlines()[0].strip() if message else "invalid request"
