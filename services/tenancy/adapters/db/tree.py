"""Tenant groups and locations: the tree as materialised paths, changed by set-based statements."""

import uuid
from typing import Any

from sqlalchemy import Row, Uuid, case, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.errors import AlreadyExists
from services.tenancy.adapters.db import tables
from services.tenancy.adapters.db.paths import lineage_of, path_of, subtree_end
from services.tenancy.domain.groups import GroupType, TenantGroup
from services.tenancy.domain.locations import TenantLocation
from services.tenancy.service_layer.ports import SubtreeDeletion

SIBLING_NAME_KEY = "tenant_groups_sibling_name_key"
LOCK_TREE = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
# The group and its ancestors in one statement: their ids are the segments of its path.
# (The ids come from a subquery, so that they are one value the primary key index can look up:
# the functions splitting the path are not leakproof, so under row-level security a join on
# them would be a filter over every group of the account.)
WITH_ANCESTORS = text(
    "SELECT a.id, a.account_id, a.type, a.name, a.path, a.created_at, a.updated_at"
    " FROM tenancy.tenant_groups a"
    " WHERE a.account_id = :account_id AND a.id = ANY (CAST(("
    "  SELECT string_to_array(btrim(g.path, '/'), '/') FROM tenancy.tenant_groups g"
    "  WHERE g.account_id = :account_id AND g.id = :group_id AND g.deleted_at IS NULL)"
    "  AS uuid[]))"
    " ORDER BY a.depth"
)
MOVE_TENANTS_UP = text(
    "WITH moved AS ("
    " UPDATE tenancy.tenants SET group_id = :parent_id, group_path = :parent_path,"
    "  updated_at = now()"
    " WHERE account_id = :account_id AND group_path >= :path AND group_path < :path_end"
    " RETURNING deleted_at)"
    " SELECT count(*) FILTER (WHERE deleted_at IS NULL) FROM moved"
)


def _violated_constraint(error: IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def _group(row: Row[Any]) -> TenantGroup:
    return TenantGroup(
        id=row.id,
        account_id=row.account_id,
        type=GroupType(row.type),
        name=row.name,
        lineage=lineage_of(row.path),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _name_taken(group: TenantGroup) -> AlreadyExists:
    where = "at the root" if group.parent_id is None else "under the same parent"
    return AlreadyExists(f"a group named {group.name!r} already exists {where}")


class SqlGroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_tree(self, account_id: uuid.UUID) -> None:
        await self.session.execute(LOCK_TREE, {"key": f"tenancy.tree:{account_id}"})

    async def add(self, group: TenantGroup) -> None:
        t = tables.tenant_groups
        insert_group = (
            t.insert()
            .values(
                id=group.id,
                account_id=group.account_id,
                parent_id=group.parent_id,
                type=group.type.value,
                name=group.name,
                path=path_of(group.lineage),
                depth=group.depth,
            )
            .returning(t.c.created_at, t.c.updated_at)
        )
        try:
            row = (await self.session.execute(insert_group)).one()
        except IntegrityError as error:
            if _violated_constraint(error) == SIBLING_NAME_KEY:
                raise _name_taken(group) from None
            raise
        group.created_at, group.updated_at = row.created_at, row.updated_at

    async def get(self, account_id: uuid.UUID, group_id: uuid.UUID) -> TenantGroup | None:
        t = tables.tenant_groups
        query = select(t).where(
            t.c.account_id == account_id, t.c.id == group_id, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _group(row) if row else None

    async def get_with_ancestors(
        self, account_id: uuid.UUID, group_id: uuid.UUID
    ) -> list[TenantGroup]:
        params = {"account_id": account_id, "group_id": group_id}
        return [_group(row) for row in await self.session.execute(WITH_ANCESTORS, params)]

    async def list_children(
        self,
        account_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        *,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[TenantGroup]:
        t = tables.tenant_groups
        query = (
            select(t)
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if parent_id is None:
            query = query.where(t.c.parent_id.is_(None))
        else:
            query = query.where(t.c.parent_id == parent_id)
        if after is not None:
            query = query.where(t.c.id > after)
        return [_group(row) for row in await self.session.execute(query)]

    async def subtree_height(self, group: TenantGroup) -> int:
        t = tables.tenant_groups
        path = path_of(group.lineage)
        query = select(func.max(t.c.depth)).where(
            t.c.account_id == group.account_id,
            t.c.path >= path,
            t.c.path < subtree_end(path),
            t.c.deleted_at.is_(None),
        )
        deepest = (await self.session.execute(query)).scalar_one()
        return (deepest or group.depth) - group.depth + 1

    async def contents(self, group: TenantGroup) -> tuple[int, int]:
        groups, tenants = tables.tenant_groups, tables.tenants
        children = (
            select(func.count())
            .where(
                groups.c.account_id == group.account_id,
                groups.c.parent_id == group.id,
                groups.c.deleted_at.is_(None),
            )
            .scalar_subquery()
        )
        placed = (
            select(func.count())
            .where(
                tenants.c.account_id == group.account_id,
                tenants.c.group_id == group.id,
                tenants.c.deleted_at.is_(None),
            )
            .scalar_subquery()
        )
        row = (await self.session.execute(select(children, placed))).one()
        return row[0], row[1]

    async def rename(self, group: TenantGroup) -> None:
        t = tables.tenant_groups
        update = (
            t.update()
            .where(t.c.account_id == group.account_id, t.c.id == group.id)
            .values(name=group.name, updated_at=func.now())
            .returning(t.c.updated_at)
        )
        try:
            group.updated_at = (await self.session.execute(update)).scalar_one()
        except IntegrityError as error:
            if _violated_constraint(error) == SIBLING_NAME_KEY:
                raise _name_taken(group) from None
            raise

    async def move(self, group: TenantGroup, *, old_lineage: tuple[uuid.UUID, ...]) -> None:
        groups, tenants = tables.tenant_groups, tables.tenants
        old, new = path_of(old_lineage), path_of(group.lineage)
        is_moved_group = groups.c.id == group.id
        move_groups = (
            groups.update()
            .where(
                groups.c.account_id == group.account_id,
                groups.c.path >= old,
                groups.c.path < subtree_end(old),
            )
            .values(
                path=literal(new) + func.substr(groups.c.path, len(old) + 1),
                depth=groups.c.depth + (group.depth - len(old_lineage)),
                parent_id=case(
                    (is_moved_group, literal(group.parent_id, Uuid)), else_=groups.c.parent_id
                ),
                updated_at=case((is_moved_group, func.now()), else_=groups.c.updated_at),
            )
        )
        try:
            await self.session.execute(move_groups)
        except IntegrityError as error:
            if _violated_constraint(error) == SIBLING_NAME_KEY:
                raise _name_taken(group) from None
            raise
        await self.session.execute(
            tenants.update()
            .where(
                tenants.c.account_id == group.account_id,
                tenants.c.group_path >= old,
                tenants.c.group_path < subtree_end(old),
            )
            .values(group_path=literal(new) + func.substr(tenants.c.group_path, len(old) + 1))
        )

    async def delete_subtree(self, group: TenantGroup) -> SubtreeDeletion:
        t = tables.tenant_groups
        path = path_of(group.lineage)
        deleted = await self.session.execute(
            t.update()
            .where(
                t.c.account_id == group.account_id,
                t.c.path >= path,
                t.c.path < subtree_end(path),
                t.c.deleted_at.is_(None),
            )
            .values(deleted_at=func.now(), updated_at=func.now())
        )
        parent_path = path_of(group.ancestor_ids) if group.ancestor_ids else None
        moved = await self.session.execute(
            MOVE_TENANTS_UP,
            {
                "account_id": group.account_id,
                "parent_id": group.parent_id,
                "parent_path": parent_path,
                "path": path,
                "path_end": subtree_end(path),
            },
        )
        return SubtreeDeletion(deleted_groups=deleted.rowcount, moved_tenants=moved.scalar_one())


def _location(row: Row[Any]) -> TenantLocation:
    return TenantLocation(
        account_id=row.account_id,
        tenant_id=row.tenant_id,
        address_lines=tuple(row.address_lines),
        city=row.city,
        postal_code=row.postal_code,
        region=row.region,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlLocationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: uuid.UUID, tenant_id: uuid.UUID) -> TenantLocation | None:
        t = tables.tenant_locations
        query = select(t).where(t.c.account_id == account_id, t.c.tenant_id == tenant_id)
        row = (await self.session.execute(query)).first()
        return _location(row) if row else None

    async def put(self, location: TenantLocation) -> None:
        t = tables.tenant_locations
        fields = {
            "address_lines": list(location.address_lines),
            "city": location.city,
            "postal_code": location.postal_code,
            "region": location.region,
            "country": location.country,
            "latitude": location.latitude,
            "longitude": location.longitude,
        }
        upsert = insert(t).values(
            account_id=location.account_id, tenant_id=location.tenant_id, **fields
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[t.c.tenant_id], set_={**fields, "updated_at": func.now()}
        ).returning(t.c.created_at, t.c.updated_at)
        row = (await self.session.execute(upsert)).one()
        location.created_at, location.updated_at = row.created_at, row.updated_at

    async def delete(self, account_id: uuid.UUID, tenant_id: uuid.UUID) -> bool:
        t = tables.tenant_locations
        deleted = await self.session.execute(
            t.delete().where(t.c.account_id == account_id, t.c.tenant_id == tenant_id)
        )
        return deleted.rowcount > 0
