"""Repositories over one AsyncSession; row-level security limits them to the session's scope."""

import uuid
from typing import Any

from sqlalchemy import Row, Text, Uuid, any_, bindparam, func, select, text, true, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.errors import AlreadyExists
from services.runtime.ids import new_id
from services.tenancy.adapters.db import tables
from services.tenancy.adapters.db.paths import path_of, subtree_end
from services.tenancy.domain.groups import TenantGroup
from services.tenancy.domain.model import (
    Account,
    AccountStatus,
    Tenant,
    TenantMappingCode,
    Tier,
)
from services.tenancy.service_layer.ports import StoredDataKey, TenantScope

FIND_ACCOUNT = text(
    "SELECT id, name, slug, tier, status, created_at, updated_at FROM tenancy.find_account(:ref)"
)


def _violated_constraint(error: IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        slug=row.slug,
        tier=Tier(row.tier),
        status=AccountStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, account: Account) -> None:
        t = tables.accounts
        insert = (
            t.insert()
            .values(
                id=account.id,
                name=account.name,
                slug=account.slug,
                tier=account.tier.value,
                status=account.status.value,
            )
            .returning(t.c.created_at, t.c.updated_at)
        )
        try:
            row = (await self.session.execute(insert)).one()
        except IntegrityError as error:
            if _violated_constraint(error) == "accounts_slug_key":
                raise AlreadyExists(
                    f"an account with slug {account.slug!r} already exists; slugs are unique"
                ) from None
            raise
        account.created_at, account.updated_at = row.created_at, row.updated_at

    async def find(self, ref: str) -> Account | None:
        row = (await self.session.execute(FIND_ACCOUNT, {"ref": ref})).first()
        return _account(row) if row else None

    async def get_for_update(self, account_id: uuid.UUID) -> Account | None:
        t = tables.accounts
        query = select(t).where(t.c.id == account_id).with_for_update()
        row = (await self.session.execute(query)).first()
        return _account(row) if row else None

    async def save_status(self, account: Account) -> None:
        t = tables.accounts
        update = (
            t.update()
            .where(t.c.id == account.id)
            .values(status=account.status.value, updated_at=func.now())
            .returning(t.c.updated_at)
        )
        account.updated_at = (await self.session.execute(update)).scalar_one()


class SqlDataKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, account_id: uuid.UUID, version: int, wrapped_key: bytes) -> None:
        await self.session.execute(
            tables.data_keys.insert().values(
                id=new_id(),
                account_id=account_id,
                version=version,
                wrapped_key=wrapped_key,
            )
        )

    async def get(self, account_id: uuid.UUID, version: int | None) -> StoredDataKey | None:
        t = tables.data_keys
        query = select(t.c.version, t.c.wrapped_key).where(
            t.c.account_id == account_id, t.c.destroyed_at.is_(None)
        )
        if version is None:
            query = query.order_by(t.c.version.desc()).limit(1)
        else:
            query = query.where(t.c.version == version)
        row = (await self.session.execute(query)).first()
        return StoredDataKey(version=row.version, wrapped_key=row.wrapped_key) if row else None


def _tenant(row: Row[Any]) -> Tenant:
    return Tenant(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        group_id=row.group_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _mapping(row: Row[Any]) -> TenantMappingCode:
    return TenantMappingCode(
        id=row.id,
        account_id=row.account_id,
        tenant_id=row.tenant_id,
        source=row.source,
        code=row.code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlTenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant: Tenant) -> None:
        t = tables.tenants
        insert = (
            t.insert()
            .values(id=tenant.id, account_id=tenant.account_id, name=tenant.name)
            .returning(t.c.created_at, t.c.updated_at)
        )
        try:
            row = (await self.session.execute(insert)).one()
        except IntegrityError as error:
            if _violated_constraint(error) == "tenants_account_name_key":
                raise AlreadyExists(f"a tenant named {tenant.name!r} already exists") from None
            raise
        tenant.created_at, tenant.updated_at = row.created_at, row.updated_at

    async def get(
        self, account_id: uuid.UUID, tenant_id: uuid.UUID, *, within: TenantScope
    ) -> Tenant | None:
        t = tables.tenants
        query = select(t).where(
            t.c.account_id == account_id, t.c.id == tenant_id, t.c.deleted_at.is_(None)
        )
        if within is not None:
            query = query.where(t.c.id.in_(within))
        row = (await self.session.execute(query)).first()
        return _tenant(row) if row else None

    async def list_page(
        self, account_id: uuid.UUID, *, within: TenantScope, after: uuid.UUID | None, limit: int
    ) -> list[Tenant]:
        t = tables.tenants
        query = (
            select(t)
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if within is not None:
            query = query.where(t.c.id.in_(within))
        if after is not None:
            query = query.where(t.c.id > after)
        return [_tenant(row) for row in await self.session.execute(query)]

    async def move(self, tenant: Tenant, group: TenantGroup | None) -> None:
        t = tables.tenants
        update = (
            t.update()
            .where(t.c.account_id == tenant.account_id, t.c.id == tenant.id)
            .values(
                group_id=group.id if group else None,
                group_path=path_of(group.lineage) if group else None,
                updated_at=func.now(),
            )
            .returning(t.c.updated_at)
        )
        tenant.updated_at = (await self.session.execute(update)).scalar_one()

    async def list_in_group(
        self,
        group: TenantGroup,
        *,
        recursive: bool,
        within: TenantScope,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Tenant]:
        t = tables.tenants
        query = (
            select(t)
            .where(t.c.account_id == group.account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if recursive:
            path = path_of(group.lineage)
            query = query.where(t.c.group_path >= path, t.c.group_path < subtree_end(path))
        else:
            query = query.where(t.c.group_id == group.id)
        if within is not None:
            query = query.where(t.c.id.in_(within))
        if after is not None:
            query = query.where(t.c.id > after)
        return [_tenant(row) for row in await self.session.execute(query)]

    async def expand(
        self,
        account_id: uuid.UUID,
        *,
        group_ids: list[uuid.UUID],
        tenant_ids: list[uuid.UUID],
        within: TenantScope,
    ) -> list[uuid.UUID]:
        tenants, groups = tables.tenants, tables.tenant_groups
        named = select(tenants.c.id).where(
            tenants.c.account_id == account_id,
            tenants.c.deleted_at.is_(None),
            tenants.c.id == any_(bindparam("tenant_ids", tenant_ids, type_=ARRAY(Uuid))),
        )
        # One index range of tenants per group; OFFSET 0 keeps the planner from turning it into
        # a join it might run the other way round (row-level security blurs its estimates).
        in_subtree = select(tenants.c.id).where(
            tenants.c.account_id == groups.c.account_id,
            tenants.c.group_path >= groups.c.path,
            tenants.c.group_path < groups.c.path_end,
            tenants.c.deleted_at.is_(None),
        )
        if within is not None:
            named = named.where(tenants.c.id.in_(within))
            in_subtree = in_subtree.where(tenants.c.id.in_(within))
        subtree = in_subtree.offset(0).lateral("subtree")
        under_groups = (
            select(subtree.c.id)
            .select_from(groups)
            .join(subtree, true())
            .where(
                groups.c.account_id == account_id,
                groups.c.id == any_(bindparam("group_ids", group_ids, type_=ARRAY(Uuid))),
                groups.c.deleted_at.is_(None),
            )
        )
        query = union(named, under_groups).order_by(text("1"))
        return list((await self.session.execute(query)).scalars())


class SqlMappingCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, mapping: TenantMappingCode) -> None:
        t = tables.tenant_mapping_codes
        insert = (
            t.insert()
            .values(
                id=mapping.id,
                account_id=mapping.account_id,
                tenant_id=mapping.tenant_id,
                source=mapping.source,
                code=mapping.code,
            )
            .returning(t.c.created_at, t.c.updated_at)
        )
        try:
            row = (await self.session.execute(insert)).one()
        except IntegrityError as error:
            if _violated_constraint(error) == "tenant_mapping_codes_source_code_key":
                raise AlreadyExists(
                    f"code {mapping.code!r} of source {mapping.source!r} is already mapped"
                ) from None
            raise
        mapping.created_at, mapping.updated_at = row.created_at, row.updated_at

    async def list_page(
        self,
        account_id: uuid.UUID,
        *,
        within: TenantScope,
        source: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[TenantMappingCode]:
        t = tables.tenant_mapping_codes
        query = (
            select(t)
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if within is not None:
            query = query.where(t.c.tenant_id.in_(within))
        if source is not None:
            query = query.where(t.c.source == source)
        if after is not None:
            query = query.where(t.c.id > after)
        return [_mapping(row) for row in await self.session.execute(query)]

    async def resolve(
        self, account_id: uuid.UUID, *, within: TenantScope, source: str, codes: list[str]
    ) -> dict[str, uuid.UUID]:
        codes_table, tenants = tables.tenant_mapping_codes, tables.tenants
        query = (
            select(codes_table.c.code, codes_table.c.tenant_id)
            .join(
                tenants,
                (tenants.c.account_id == codes_table.c.account_id)
                & (tenants.c.id == codes_table.c.tenant_id),
            )
            .where(
                codes_table.c.account_id == account_id,
                codes_table.c.source == source,
                codes_table.c.code == any_(bindparam("codes", codes, type_=ARRAY(Text))),
                codes_table.c.deleted_at.is_(None),
                tenants.c.deleted_at.is_(None),
            )
        )
        if within is not None:
            query = query.where(codes_table.c.tenant_id.in_(within))
        return {row.code: row.tenant_id for row in await self.session.execute(query)}
