"""Use cases that read what loads left: canonical records (decrypted) and rejects."""

import dataclasses
import uuid

from services.canonical.adapters.db.repositories import (
    LoadRepository,
    RecordRepository,
    RejectRepository,
)
from services.canonical.domain.encryption import Keyring, key_version_of
from services.canonical.domain.loads import Reject
from services.canonical.domain.records import CanonicalRecord, open_record_data
from services.canonical.domain.schemas import canonical_schema
from services.canonical.service_layer.ports import KeyProvider
from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.errors import NotFound
from services.runtime.ids import parse_id
from services.runtime.pages import decode_token, next_token, page_size


async def list_records(
    *,
    db: Database,
    keys: KeyProvider,
    ctx: CallContext,
    schema: str,
    size: int,
    token: str,
    tenant_id: str = "",
) -> tuple[list[CanonicalRecord], str]:
    """A page of one schema's records in the caller's tenants, sensitive fields decrypted."""
    account_id = ctx.require_account()
    canonical = canonical_schema(schema)
    limit, after = page_size(size), decode_token(token)
    tenant = parse_id(tenant_id, what="tenant_id") if tenant_id else None
    async with db.transaction(Scope.of(ctx)) as session:
        items = await RecordRepository(session).page(
            schema=canonical.name,
            after=after,
            limit=limit,
            tenant_id=tenant,
            tenant_ids=ctx.tenant_ids,
        )
    keyring = await _keyring(keys, account_id, items, [f.name for f in canonical.sensitive_fields])
    opened = [
        dataclasses.replace(
            item,
            data=open_record_data(
                item.data,
                account_id=account_id,
                schema=canonical,
                dedupe_key=item.dedupe_key,
                keyring=keyring,
            ),
        )
        for item in items
    ]
    return opened, next_token(items, limit)


async def _keyring(
    keys: KeyProvider, account_id: uuid.UUID, items: list[CanonicalRecord], sensitive: list[str]
) -> Keyring:
    """The key versions the page's sensitive values need, one call per version."""
    versions = {
        key_version_of(value)
        for item in items
        for name in sensitive
        if isinstance(value := item.data.get(name), str)
    }
    keyring = Keyring()
    for version in sorted(versions):
        key = await keys.version(account_id=account_id, version=version)
        keyring.add(key.version, key.key)
    return keyring


async def list_rejects(
    *, db: Database, ctx: CallContext, file_id: str, size: int, token: str
) -> tuple[list[Reject], str]:
    """A page of the rows of one loaded file of the caller's account that did not load."""
    ctx.require_account()
    file = parse_id(file_id, what="file_id")
    limit, after = page_size(size), decode_token(token)
    async with db.transaction(Scope.of(ctx)) as session:
        if not await LoadRepository(session).exists(file):
            raise NotFound(f"file {file_id} has not been loaded")
        items = await RejectRepository(session).page(file_id=file, after=after, limit=limit)
    return items, next_token(items, limit)
