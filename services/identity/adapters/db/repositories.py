"""Repositories over one AsyncSession: the only place identity's SQL lives."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, and_, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.adapters.db.tables import IdentityTables
from services.identity.domain.roles import ACCOUNT_SCOPE, Role, RoleGrant, preset_role_rows
from services.identity.domain.tokens import PublicKey
from services.identity.domain.users import User, UserStatus
from services.runtime.ids import new_id

# Serializes signing-key creation across replicas (pg_advisory_xact_lock key).
SIGNING_KEY_LOCK = 0x1D3_5161


def _user(row: Row) -> User:  # type: ignore[type-arg]
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        status=UserStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Users:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.users
        self.memberships = tables.memberships

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (t.c.id, t.c.email, t.c.display_name, t.c.status, t.c.created_at, t.c.updated_at)

    async def by_email(self, email: str) -> User | None:
        query = select(*self._columns()).where(func.lower(self.t.c.email) == func.lower(email))
        row = (await self.session.execute(query)).first()
        return _user(row) if row else None

    async def credentials(self, email: str) -> tuple[User, str] | None:
        """The user with `email` and its password hash (for sign-in only)."""
        query = select(*self._columns(), self.t.c.password_hash).where(
            func.lower(self.t.c.email) == func.lower(email)
        )
        row = (await self.session.execute(query)).first()
        return (_user(row), row.password_hash) if row else None

    async def by_id(self, user_id: uuid.UUID) -> User | None:
        row = (
            await self.session.execute(select(*self._columns()).where(self.t.c.id == user_id))
        ).first()
        return _user(row) if row else None

    async def add(self, *, email: str, display_name: str, password_hash: str) -> User | None:
        """Insert a user; None when the email is already taken (case-insensitively)."""
        query = (
            insert(self.t)
            .values(
                id=new_id(), email=email, display_name=display_name, password_hash=password_hash
            )
            .on_conflict_do_nothing(index_elements=[func.lower(self.t.c.email)])
            .returning(*self._columns())
        )
        row = (await self.session.execute(query)).first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            update(self.t)
            .where(self.t.c.id == user_id)
            .values(password_hash=password_hash, updated_at=func.now())
        )

    async def members(
        self, account_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[User]:
        """Users with a live membership in the account, by id."""
        m = self.memberships
        query = (
            select(*self._columns())
            .join(m, m.c.user_id == self.t.c.id)
            .where(m.c.account_id == account_id, m.c.deleted_at.is_(None))
            .order_by(self.t.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(self.t.c.id > after)
        return [_user(row) for row in (await self.session.execute(query)).all()]


class Memberships:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.memberships

    async def add(self, account_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Make the user a member; False when it already was."""
        query = (
            insert(self.t)
            .values(id=new_id(), account_id=account_id, user_id=user_id)
            .on_conflict_do_nothing(
                index_elements=["account_id", "user_id"], index_where=text("deleted_at IS NULL")
            )
            .returning(self.t.c.id)
        )
        return (await self.session.execute(query)).first() is not None

    async def is_member(self, account_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        live = exists().where(
            self.t.c.account_id == account_id,
            self.t.c.user_id == user_id,
            self.t.c.deleted_at.is_(None),
        )
        return bool((await self.session.execute(select(live))).scalar())

    async def accounts_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Every account the user belongs to, across accounts (a SECURITY DEFINER lookup)."""
        function = f"{self.t.schema}.accounts_of_user"
        rows = await self.session.execute(
            text(f"SELECT account_id FROM {function}(:user_id) AS account_id"),
            {"user_id": user_id},
        )
        return [row.account_id for row in rows]


def _role(row: Row) -> Role:  # type: ignore[type-arg]
    return Role(id=row.id, name=row.name, permissions=tuple(row.permissions), preset=row.preset)


class Roles:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.roles
        self.grants = tables.role_grants

    async def seed_presets(self, account_id: uuid.UUID) -> list[str]:
        """Create the preset roles the account lacks, in one statement; the names created."""
        query = (
            insert(self.t)
            .values(
                [
                    {
                        "id": new_id(),
                        "account_id": account_id,
                        "name": name,
                        "permissions": list(permissions),
                        "preset": True,
                    }
                    for name, permissions in preset_role_rows()
                ]
            )
            .on_conflict_do_nothing(index_elements=["account_id", "name"])
            .returning(self.t.c.name)
        )
        return list((await self.session.execute(query)).scalars())

    async def by_name(self, account_id: uuid.UUID, name: str) -> Role | None:
        t = self.t
        query = select(t.c.id, t.c.name, t.c.permissions, t.c.preset).where(
            t.c.account_id == account_id, t.c.name == name
        )
        row = (await self.session.execute(query)).first()
        return _role(row) if row else None

    async def all(self, account_id: uuid.UUID) -> list[Role]:
        t = self.t
        query = (
            select(t.c.id, t.c.name, t.c.permissions, t.c.preset)
            .where(t.c.account_id == account_id)
            .order_by(t.c.preset.desc(), t.c.name)
        )
        return [_role(row) for row in (await self.session.execute(query)).all()]

    async def granted_permissions(
        self, account_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[list[str]]:
        """The permissions of each role granted to the user in the account."""
        g = self.grants
        query = (
            select(self.t.c.permissions)
            .join(g, and_(g.c.role_id == self.t.c.id, g.c.account_id == self.t.c.account_id))
            .where(g.c.account_id == account_id, g.c.user_id == user_id, g.c.deleted_at.is_(None))
        )
        return [list(row.permissions) for row in (await self.session.execute(query)).all()]


class Grants:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.role_grants

    async def grant(
        self, *, account_id: uuid.UUID, user_id: uuid.UUID, role: Role
    ) -> tuple[RoleGrant, bool]:
        """Grant `role` on the account (idempotent); the grant and whether it is new."""
        t = self.t
        inserted = (
            await self.session.execute(
                insert(t)
                .values(
                    id=new_id(),
                    account_id=account_id,
                    user_id=user_id,
                    role_id=role.id,
                    scope=ACCOUNT_SCOPE,
                )
                .on_conflict_do_nothing(
                    index_elements=["account_id", "user_id", "role_id", "scope"],
                    index_where=text("deleted_at IS NULL"),
                )
                .returning(t.c.id, t.c.created_at)
            )
        ).first()
        if inserted is None:
            inserted = (
                await self.session.execute(
                    select(t.c.id, t.c.created_at).where(
                        t.c.account_id == account_id,
                        t.c.user_id == user_id,
                        t.c.role_id == role.id,
                        t.c.scope == ACCOUNT_SCOPE,
                        t.c.deleted_at.is_(None),
                    )
                )
            ).one()
            created = False
        else:
            created = True
        grant = RoleGrant(
            id=inserted.id,
            user_id=user_id,
            role=role.name,
            scope=ACCOUNT_SCOPE,
            created_at=inserted.created_at,
        )
        return grant, created


@dataclass(frozen=True)
class StoredSigningKey:
    kid: str
    private_key_wrapped: bytes
    public_key: bytes


class SigningKeys:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.signing_keys

    async def lock(self) -> None:
        """Hold the signing-key lock until the transaction ends."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": SIGNING_KEY_LOCK}
        )

    async def active(self) -> StoredSigningKey | None:
        t = self.t
        query = select(t.c.kid, t.c.private_key_wrapped, t.c.public_key).where(
            t.c.retired_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return StoredSigningKey(row.kid, row.private_key_wrapped, row.public_key) if row else None

    async def add(self, key: StoredSigningKey) -> None:
        await self.session.execute(
            insert(self.t).values(
                kid=key.kid, private_key_wrapped=key.private_key_wrapped, public_key=key.public_key
            )
        )

    async def published(self, *, retired_after: datetime) -> list[PublicKey]:
        """The active key and those retired recently enough to verify unexpired tokens."""
        t = self.t
        query = (
            select(t.c.kid, t.c.public_key, t.c.created_at, t.c.retired_at)
            .where((t.c.retired_at.is_(None)) | (t.c.retired_at > retired_after))
            .order_by(t.c.created_at.desc())
        )
        return [
            PublicKey(
                kid=r.kid, public_key=r.public_key, created_at=r.created_at, retired_at=r.retired_at
            )
            for r in (await self.session.execute(query)).all()
        ]


@dataclass(frozen=True)
class Repositories:
    """Every repository on one session (one transaction)."""

    session: AsyncSession
    users: Users
    memberships: Memberships
    roles: Roles
    grants: Grants
    signing_keys: SigningKeys

    @classmethod
    def on(cls, session: AsyncSession, tables: IdentityTables) -> "Repositories":
        return cls(
            session=session,
            users=Users(session, tables),
            memberships=Memberships(session, tables),
            roles=Roles(session, tables),
            grants=Grants(session, tables),
            signing_keys=SigningKeys(session, tables),
        )
