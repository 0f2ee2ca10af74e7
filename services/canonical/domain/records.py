"""Canonical records: the dedupe key, the content hash, and sealing sensitive fields."""

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.canonical.domain.encryption import BlindIndexKey, FieldCipher, Keyring, binding
from services.canonical.domain.errors import InvalidDedupeKeyPart
from services.canonical.domain.mapping import MappedRow, Value, from_plaintext, to_plaintext
from services.canonical.domain.schemas import CanonicalSchema

# Bump when the key layout changes; records keep the keys they were written with.
DEDUPE_KEY_FORMAT_VERSION = 1
_SEPARATOR = ":"
_ESCAPE = "\\"


def _escape(part: str) -> str:
    return part.replace(_ESCAPE, _ESCAPE * 2).replace(_SEPARATOR, _ESCAPE + _SEPARATOR)


def dedupe_key(*, tenant_id: uuid.UUID | str, source: str, object_type: str, source_id: str) -> str:
    """`{tenant_id}:{source}:{object_type}:{source_id}`, ':' and '\\' escaped inside parts.

    The one function that builds the key every record is upserted by; empty parts are refused
    so two different rows can never share a key by accident.
    """
    parts = {
        "tenant_id": str(tenant_id),
        "source": source,
        "object_type": object_type,
        "source_id": source_id,
    }
    for name, part in parts.items():
        if not part:
            raise InvalidDedupeKeyPart(f"dedupe key part {name} is empty")
    return _SEPARATOR.join(_escape(part) for part in parts.values())


def split_dedupe_key(key: str) -> list[str]:
    """The unescaped parts of a dedupe key (the inverse of `dedupe_key`)."""
    parts, current, escaped = [], [], False
    for char in key:
        if escaped:
            current.append(char)
            escaped = False
        elif char == _ESCAPE:
            escaped = True
        elif char == _SEPARATOR:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def content_hash(fields: Mapping[str, Value]) -> str:
    """SHA-256 (hex) of the plaintext fields as canonical JSON: equal content, equal hash."""
    return hashlib.sha256(orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class SealedRecord:
    """A record ready to store: sensitive values encrypted, hash over the plaintext."""

    tenant_id: uuid.UUID
    source: str
    source_id: str
    dedupe_key: str
    data: dict[str, Value]
    content_hash: str
    key_version: int
    # (field, digest) of the blind-indexed fields that have a value, and the key's version.
    index: tuple[tuple[str, str], ...] = ()
    index_key_version: int = 0


@dataclass(frozen=True)
class CanonicalRecord:
    """A stored record; `data` holds ciphertexts until opened with `open_record_data`."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    schema: str
    source: str
    source_id: str
    dedupe_key: str
    data: dict[str, Value]
    key_version: int
    file_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


def seal_record(
    row: MappedRow,
    *,
    account_id: uuid.UUID,
    tenant_id: uuid.UUID,
    source: str,
    schema: CanonicalSchema,
    cipher: FieldCipher,
    index_key: BlindIndexKey | None = None,
) -> SealedRecord:
    """Encrypt the row's sensitive fields; with `index_key`, also compute the blind index of
    its searchable sensitive fields (stored with `RecordIndexRepository.put`)."""
    key = dedupe_key(
        tenant_id=tenant_id, source=source, object_type=schema.name, source_id=row.source_id
    )
    data: dict[str, Value] = dict(row.fields)
    for field in schema.sensitive_fields:
        value = data.get(field.name)
        if value is not None:
            data[field.name] = cipher.encrypt(
                to_plaintext(value),
                associated_data=binding(
                    account_id=account_id, schema=schema.name, field=field.name, dedupe_key=key
                ),
            )
    return SealedRecord(
        tenant_id=tenant_id,
        source=source,
        source_id=row.source_id,
        dedupe_key=key,
        data=data,
        content_hash=content_hash(row.fields),
        key_version=cipher.version,
        index=index_terms(row.fields, schema=schema, index_key=index_key) if index_key else (),
        index_key_version=index_key.version if index_key else 0,
    )


def index_terms(
    fields: Mapping[str, Value], *, schema: CanonicalSchema, index_key: BlindIndexKey
) -> tuple[tuple[str, str], ...]:
    """(field, digest) of each blind-indexed field of `schema` that has a value."""
    return tuple(
        (field.name, index_key.digest(field.name, to_plaintext(value)))
        for field in schema.blind_indexed_fields
        if (value := fields.get(field.name)) is not None
    )


def open_record_data(
    data: Mapping[str, Any],
    *,
    account_id: uuid.UUID,
    schema: CanonicalSchema,
    dedupe_key: str,
    keyring: Keyring,
) -> dict[str, Value]:
    """The plaintext fields of a stored record."""
    opened = dict(data)
    for field in schema.sensitive_fields:
        stored = opened.get(field.name)
        if isinstance(stored, str):
            plaintext = keyring.decrypt(
                stored,
                associated_data=binding(
                    account_id=account_id,
                    schema=schema.name,
                    field=field.name,
                    dedupe_key=dedupe_key,
                ),
            )
            opened[field.name] = from_plaintext(field, plaintext)
    return opened
