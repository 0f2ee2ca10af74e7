"""Leases on caching authz versions, and the fences sent to their holders."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    """A holder (a gateway process) that must hear of every authorization change first."""

    lease_id: uuid.UUID
    fence_subject: str


@dataclass(frozen=True)
class Fence:
    """An authorization change of one account, told to every lease holder before it commits:
    from then on the holder must not answer from a version older than `version`."""

    fence_id: uuid.UUID
    account_id: uuid.UUID
    version: int
