"""Fakes of the load's ports (ingestion's file bytes, tenancy's codes and data keys)."""

import os
import uuid
from collections.abc import AsyncGenerator, Collection

from services.canonical.service_layer.ports import DataKey, FileUnavailable, KeyUnavailable


class FakeFiles:
    """Files by (account, id), served in small chunks so records and characters split."""

    def __init__(self, chunk_size: int = 64) -> None:
        self.chunk_size = chunk_size
        self.contents: dict[tuple[uuid.UUID, uuid.UUID], bytes] = {}
        # file id -> how many more reads crash after the first chunk (a lost connection).
        self.crashes: dict[uuid.UUID, int] = {}

    def add(self, account_id: uuid.UUID, data: bytes) -> uuid.UUID:
        file_id = uuid.uuid4()
        self.contents[(account_id, file_id)] = data
        return file_id

    async def read(
        self, *, account_id: uuid.UUID, file_id: uuid.UUID
    ) -> AsyncGenerator[bytes, None]:
        data = self.contents.get((account_id, file_id))
        if data is None:
            raise FileUnavailable(f"file {file_id} is not available")
        for start in range(0, len(data), self.chunk_size):
            if start and self.crashes.get(file_id, 0) > 0 and start >= len(data) // 2:
                self.crashes[file_id] -= 1
                raise ConnectionError("ingestion went away")
            yield data[start : start + self.chunk_size]


class FakeTenants:
    def __init__(self) -> None:
        self.codes: dict[tuple[uuid.UUID, str, str], uuid.UUID] = {}
        self.calls: list[tuple[uuid.UUID, str, tuple[str, ...]]] = []

    def add(self, account_id: uuid.UUID, source: str, code: str) -> uuid.UUID:
        tenant_id = uuid.uuid4()
        self.codes[(account_id, source, code)] = tenant_id
        return tenant_id

    async def resolve(
        self, *, account_id: uuid.UUID, source: str, codes: Collection[str]
    ) -> dict[str, uuid.UUID]:
        self.calls.append((account_id, source, tuple(codes)))
        return {
            code: self.codes[(account_id, source, code)]
            for code in codes
            if (account_id, source, code) in self.codes
        }


class FakeKeys:
    def __init__(self) -> None:
        self.keys: dict[uuid.UUID, dict[int, bytes]] = {}

    def key_of(self, account_id: uuid.UUID) -> dict[int, bytes]:
        return self.keys.setdefault(account_id, {1: os.urandom(32)})

    async def current(self, *, account_id: uuid.UUID) -> DataKey:
        versions = self.key_of(account_id)
        latest = max(versions)
        return DataKey(latest, versions[latest])

    async def version(self, *, account_id: uuid.UUID, version: int) -> DataKey:
        versions = self.key_of(account_id)
        if version not in versions:
            raise KeyUnavailable(f"key version {version} is not available")
        return DataKey(version, versions[version])
