"""Turning mapped rows into staged lines: a sealed record, or a reject with every reason.

Plain computation on the domain's functions, shared by the in-process load and the worker
processes of a parallel one (so it holds no connection, no event loop and no port).
"""

import uuid
from collections.abc import Iterable, Sequence

import orjson

from services.canonical.adapters.db.loading import record_line, reject_line
from services.canonical.domain.encryption import BlindIndexKey, FieldCipher
from services.canonical.domain.loads import tenant_reasons
from services.canonical.domain.mapping import MappedRow, RowMapper
from services.canonical.domain.records import RecordSealer


class RowStager:
    """Stages the rows of one file; build once per file (and per worker process)."""

    def __init__(
        self,
        *,
        account_id: uuid.UUID,
        mapper: RowMapper,
        allowed: frozenset[uuid.UUID],
        cipher: FieldCipher | None = None,
        index_key: BlindIndexKey | None = None,
    ) -> None:
        self.account_id = account_id
        self.mapper = mapper
        self.schema = mapper.canonical
        self.allowed = allowed
        self.cipher = cipher
        self.index_key = index_key
        self.tenant_source = mapper.source.tenant_code_source
        self.tenant_column = mapper.source.tenant_code_column
        self.sealer: RecordSealer | None = None
        if cipher is not None:
            self._seal_with(cipher, index_key)

    def use_key(self, key: bytes, version: int) -> None:
        self.cipher = FieldCipher(key, version)
        self.index_key = BlindIndexKey.derive(key, version)
        self._seal_with(self.cipher, self.index_key)

    def _seal_with(self, cipher: FieldCipher, index_key: BlindIndexKey | None) -> None:
        self.sealer = RecordSealer(
            account_id=self.account_id,
            source=self.tenant_source,
            schema=self.schema,
            cipher=cipher,
            index_key=index_key,
        )

    def needs_key(self, row: MappedRow, tenant_id: uuid.UUID | None) -> bool:
        return not row.reasons and tenant_id in self.allowed

    def lines(
        self,
        rows: Iterable[tuple[MappedRow, Sequence[str]]],
        tenant_of_code: dict[str, uuid.UUID | None],
    ) -> bytes:
        """COPY lines of (row, its values) whose tenant codes were all looked up already."""
        return "".join(
            self.line(row, values, tenant_of_code.get(row.tenant_code)) for row, values in rows
        ).encode()

    def line(self, row: MappedRow, values: Sequence[str], tenant_id: uuid.UUID | None) -> str:
        found = tenant_reasons(
            row, tenant_id=tenant_id, allowed=self.allowed, source=self.tenant_source
        )
        if row.reasons or found or tenant_id is None:
            reject = self.mapper.reject(row, values, [(self.tenant_column, r) for r in found])
            return reject_line(
                reject.row_number,
                reject.reasons,
                reject.reason_columns,
                reject.value_columns,
                reject.values,
            )
        sealer = self.sealer
        if sealer is None:
            raise RuntimeError("a row to seal, but no data key was given")
        record = sealer.seal(row, tenant_id)
        return record_line(
            row.row_number,
            sealer.tenant_text(tenant_id),
            record.source_id,
            record.dedupe_key,
            orjson.dumps(record.data).decode(),
            record.content_hash,
            record.index,
        )
