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
    return hashlib.sha256(
        orjson.dumps(fields if type(fields) is dict else dict(fields), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


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
    sealer = RecordSealer(
        account_id=account_id, source=source, schema=schema, cipher=cipher, index_key=index_key
    )
    return sealer.seal(row, tenant_id)


class RecordSealer:
    """`seal_record` for the many rows of one load: what every row shares (the key's fixed
    parts, each sensitive field's associated-data prefix, the fields to index, each tenant's
    text) is worked out once, not per row. Same records, same errors."""

    def __init__(
        self,
        *,
        account_id: uuid.UUID,
        source: str,
        schema: CanonicalSchema,
        cipher: FieldCipher,
        index_key: BlindIndexKey | None = None,
    ) -> None:
        self.source = source
        self.cipher = cipher
        self.index_key = index_key
        self._empty_part = next(
            (name for name, part in (("source", source), ("object_type", schema.name)) if not part),
            None,
        )
        self._key_suffix = _SEPARATOR.join(("", _escape(source), _escape(schema.name), ""))
        # binding(account_id, schema, field, dedupe_key) = this prefix + the dedupe key.
        self._sensitive = tuple(
            (
                f.name,
                binding(account_id=account_id, schema=schema.name, field=f.name, dedupe_key=""),
            )
            for f in schema.sensitive_fields
        )
        self._indexed = tuple(f.name for f in schema.blind_indexed_fields) if index_key else ()
        self._tenants: dict[uuid.UUID, str] = {}

    def tenant_text(self, tenant_id: uuid.UUID) -> str:
        text = self._tenants.get(tenant_id)
        if text is None:
            text = self._tenants[tenant_id] = str(tenant_id)
        return text

    def seal(self, row: MappedRow, tenant_id: uuid.UUID) -> SealedRecord:
        key = self.dedupe_key(tenant_id, row.source_id)
        fields = row.fields
        data: dict[str, Value] = dict(fields)
        encrypt = self.cipher.encrypt
        for name, bound in self._sensitive:
            value = fields.get(name)
            if value is not None:
                data[name] = encrypt(to_plaintext(value), associated_data=bound + key.encode())
        index_key = self.index_key
        return SealedRecord(
            tenant_id=tenant_id,
            source=self.source,
            source_id=row.source_id,
            dedupe_key=key,
            data=data,
            content_hash=content_hash(fields),
            key_version=self.cipher.version,
            index=tuple(
                (name, index_key.digest(name, to_plaintext(value)))
                for name in self._indexed
                if (value := fields.get(name)) is not None
            )
            if index_key
            else (),
            index_key_version=index_key.version if index_key else 0,
        )

    def dedupe_key(self, tenant_id: uuid.UUID, source_id: str) -> str:
        """`dedupe_key(tenant_id=..., source=..., object_type=..., source_id=...)`."""
        tenant = self.tenant_text(tenant_id)
        if not tenant:
            raise InvalidDedupeKeyPart("dedupe key part tenant_id is empty")
        if self._empty_part:
            raise InvalidDedupeKeyPart(f"dedupe key part {self._empty_part} is empty")
        if not source_id:
            raise InvalidDedupeKeyPart("dedupe key part source_id is empty")
        if _ESCAPE in source_id or _SEPARATOR in source_id:
            source_id = _escape(source_id)
        return tenant + self._key_suffix + source_id


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
