"""Everything identity's use cases work with, built once by bootstrap."""

from dataclasses import dataclass

from services.identity.domain.roles import PermissionCatalogue
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.ports import DomainVerifier, TenantDirectory
from services.identity.service_layer.signing import TokenSigner
from services.identity.service_layer.unit_of_work import IdentityStore


@dataclass(frozen=True)
class Deps:
    store: IdentityStore
    passwords: Passwords
    signer: TokenSigner
    tenants: TenantDirectory
    verifier: DomainVerifier
    catalogue: PermissionCatalogue
    refresh_lifetime_seconds: int = 30 * 86_400
    # An API key's last use is written at most this often.
    api_key_touch_seconds: int = 60
    # How long a lease on caching authz versions lasts unrenewed.
    authz_lease_seconds: float = 3.0
