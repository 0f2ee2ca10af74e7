"""Tenant groups: the account's tree of regions, groups and sites, and the rules it keeps.

A group knows its lineage (the ids from its root down to itself), so cycles and depth are
decided here without I/O; how the tree is stored (a materialised path) is the adapter's business.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.tenancy.domain.errors import (
    CycleRefused,
    DepthLimitExceeded,
    GroupNotEmpty,
    InvalidGroupType,
)
from services.tenancy.domain.events import (
    DomainEvent,
    TenantGroupCreated,
    TenantGroupDeleted,
    TenantGroupMoved,
    TenantGroupRenamed,
)
from services.tenancy.domain.model import MAX_NAME_LENGTH, clean_text

DEFAULT_MAX_DEPTH = 8
# Paths of ids are stored in one indexed column; keep them well inside an index entry.
HIGHEST_MAX_DEPTH = 32


class GroupType(StrEnum):
    REGION = "region"
    GROUP = "group"
    SITE = "site"


@dataclass(frozen=True)
class TreeLimits:
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= HIGHEST_MAX_DEPTH:
            raise ValueError(f"max_depth must be between 1 and {HIGHEST_MAX_DEPTH}")


def parse_group_type(value: str) -> GroupType:
    """The type named, or `group` when none is."""
    if not value.strip():
        return GroupType.GROUP
    try:
        return GroupType(value.strip().lower())
    except ValueError:
        allowed = ", ".join(t.value for t in GroupType)
        raise InvalidGroupType(f"group type {value!r} is not valid: use one of {allowed}") from None


def clean_group_name(name: str) -> str:
    return clean_text(name, what="group name", max_length=MAX_NAME_LENGTH)


@dataclass
class TenantGroup:
    """A node of the tenant tree. Names are unique among siblings, ignoring case."""

    id: uuid.UUID
    account_id: uuid.UUID
    type: GroupType
    name: str
    # The ids from the root down to this group itself.
    lineage: tuple[uuid.UUID, ...]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.lineage or self.lineage[-1] != self.id:
            raise ValueError("a group's lineage ends with the group itself")

    @property
    def parent_id(self) -> uuid.UUID | None:
        return self.lineage[-2] if len(self.lineage) > 1 else None

    @property
    def ancestor_ids(self) -> tuple[uuid.UUID, ...]:
        return self.lineage[:-1]

    @property
    def depth(self) -> int:
        """1 for a root group."""
        return len(self.lineage)

    @classmethod
    def create(
        cls,
        *,
        id: uuid.UUID,
        account_id: uuid.UUID,
        type: str,
        name: str,
        parent: "TenantGroup | None",
        limits: TreeLimits,
    ) -> "TenantGroup":
        lineage = (*(parent.lineage if parent else ()), id)
        if len(lineage) > limits.max_depth:
            raise DepthLimitExceeded(
                f"a group under {parent.name if parent else 'the root'} would be at depth"
                f" {len(lineage)}; the tree is at most {limits.max_depth} levels deep"
            )
        group = cls(
            id=id,
            account_id=account_id,
            type=parse_group_type(type),
            name=clean_group_name(name),
            lineage=lineage,
        )
        group.events.append(
            TenantGroupCreated(
                account_id=account_id,
                group_id=id,
                parent_id=group.parent_id,
                type=group.type.value,
                name=group.name,
            )
        )
        return group

    def is_within(self, other: "TenantGroup") -> bool:
        """Whether this group is `other` or lies below it."""
        return other.id in self.lineage

    def rename(self, name: str) -> bool:
        """Rename; False (and no event) when the name is the same."""
        new_name = clean_group_name(name)
        if new_name == self.name:
            return False
        old_name, self.name = self.name, new_name
        self.events.append(
            TenantGroupRenamed(
                account_id=self.account_id, group_id=self.id, old_name=old_name, new_name=new_name
            )
        )
        return True

    def move_under(
        self, parent: "TenantGroup | None", *, subtree_height: int, limits: TreeLimits
    ) -> bool:
        """Move this group (with its subtree, `subtree_height` levels including itself) under
        `parent`, or make it a root (None). False (and no event) when it is already there."""
        new_parent_id = parent.id if parent else None
        if new_parent_id == self.parent_id:
            return False
        if parent is not None and parent.is_within(self):
            raise CycleRefused(
                f"group {self.name!r} cannot move under {parent.name!r}:"
                " that group is itself or lies below it"
            )
        deepest = (parent.depth if parent else 0) + subtree_height
        if deepest > limits.max_depth:
            raise DepthLimitExceeded(
                f"moving group {self.name!r} there would put its subtree {deepest} levels deep;"
                f" the tree is at most {limits.max_depth} levels deep"
            )
        old_parent_id = self.parent_id
        self.lineage = (*(parent.lineage if parent else ()), self.id)
        self.events.append(
            TenantGroupMoved(
                account_id=self.account_id,
                group_id=self.id,
                old_parent_id=old_parent_id,
                new_parent_id=new_parent_id,
            )
        )
        return True

    def check_deletable(self, *, child_groups: int, tenants: int, recursive: bool) -> None:
        """A group with child groups or tenants is deleted only when asked recursively."""
        if recursive or (child_groups == 0 and tenants == 0):
            return
        raise GroupNotEmpty(
            f"group {self.name!r} still holds {child_groups} child group(s) and {tenants}"
            " tenant(s): move them out first, or delete recursively"
        )

    def deleted(self, *, deleted_groups: int, moved_tenants: int) -> None:
        """Record that the group and its subtree were deleted, its tenants moved to the parent."""
        self.events.append(
            TenantGroupDeleted(
                account_id=self.account_id,
                group_id=self.id,
                name=self.name,
                deleted_groups=deleted_groups,
                moved_tenants=moved_tenants,
                tenants_moved_to=self.parent_id,
            )
        )

    def pull_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events
