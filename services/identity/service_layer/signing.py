"""The platform's token-signing key: created once, stored wrapped, used to sign access tokens."""

import logging
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.adapters.db.repositories import StoredSigningKey
from services.identity.adapters.events import builders
from services.identity.domain.tokens import (
    ALGORITHM,
    TOKEN_TYPE,
    IssuedToken,
    access_token_claims,
    key_id,
)
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.ids import new_id
from services.runtime.keywrap import KeyWrapper

log = logging.getLogger(__name__)


def wrap_purpose(kid: str) -> str:
    return f"signing-key:{kid}"


# How often a replica checks whether another one rotated the key.
KEY_RECHECK_SECONDS = 30.0


class TokenSigner:
    """Holds the active signing key in memory (unwrapped) and signs access tokens with it.

    After a rotation elsewhere, a replica picks the new key up within KEY_RECHECK_SECONDS; the
    JWKS keeps a retired key for the token lifetime plus that margin, so every token it signed
    still verifies until it expires.
    """

    def __init__(self, *, wrapper: KeyWrapper, lifetime_seconds: int) -> None:
        self.wrapper = wrapper
        self.lifetime_seconds = lifetime_seconds
        self._kid: str | None = None
        self._private: Ed25519PrivateKey | None = None
        self._checked_at = 0.0

    @property
    def kid(self) -> str | None:
        return self._kid

    @property
    def retired_key_margin_seconds(self) -> float:
        """How long a retired key must stay published: tokens it signed may live that long."""
        return self.lifetime_seconds + KEY_RECHECK_SECONDS + 60

    async def current(self, store: IdentityStore) -> None:
        """Reload the active key when another replica may have rotated it."""
        if time.monotonic() - self._checked_at < KEY_RECHECK_SECONDS:
            return
        async with store.transaction(Scope.nothing()) as uow:
            kid = await uow.repos.signing_keys.active_kid()
        if kid is not None and kid != self._kid:
            await self.load_or_create(store)
        self._checked_at = time.monotonic()

    async def rotate(self, store: IdentityStore, ctx: CallContext) -> tuple[str, str]:
        """Retire the active key and make a new one active; (new kid, retired kid)."""
        async with store.transaction(Scope.nothing()) as uow:
            keys = uow.repos.signing_keys
            await keys.lock()
            retired = await keys.active_kid() or ""
            if retired:
                await keys.retire(retired)
            stored = self._new_key()
            await keys.add(stored)
            await uow.publish(builders.signing_key_rotated(stored.kid, retired, ctx=ctx))
        self._use(stored)
        log.info("signing key rotated", extra={"fields": {"kid": stored.kid, "retired": retired}})
        return stored.kid, retired

    def _use(self, stored: StoredSigningKey) -> None:
        private = self.wrapper.unwrap(stored.private_key_wrapped, purpose=wrap_purpose(stored.kid))
        self._private = Ed25519PrivateKey.from_private_bytes(private)
        self._kid = stored.kid
        self._checked_at = time.monotonic()

    async def load_or_create(self, store: IdentityStore) -> str:
        """Use the active key, creating one if there is none; replicas agree on one key."""
        async with store.transaction(Scope.nothing()) as uow:
            keys = uow.repos.signing_keys
            await keys.lock()
            stored = await keys.active()
            if stored is None:
                stored = self._new_key()
                await keys.add(stored)
                log.info("signing key created", extra={"fields": {"kid": stored.kid}})
        self._use(stored)
        return stored.kid

    def _new_key(self) -> StoredSigningKey:
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        kid = key_id(public)
        wrapped = self.wrapper.wrap(private.private_bytes_raw(), purpose=wrap_purpose(kid))
        return StoredSigningKey(kid=kid, private_key_wrapped=wrapped, public_key=public)

    def issue(self, user_id: uuid.UUID, account_id: uuid.UUID | None = None) -> IssuedToken:
        if self._private is None or self._kid is None:
            raise RuntimeError("no signing key loaded")
        claims = access_token_claims(
            user_id=user_id,
            token_id=new_id(),
            issued_at=int(time.time()),
            lifetime_seconds=self.lifetime_seconds,
            account_id=account_id,
        )
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self._kid})
        return IssuedToken(
            access_token=token,
            token_type=TOKEN_TYPE,
            expires_in=self.lifetime_seconds,
            account_id=account_id,
        )
