"""Unit tests of the tenant tree's rules and of locations (no I/O)."""

import uuid

import pytest

from services.runtime.errors import InvalidInput
from services.tenancy.domain.errors import (
    CycleRefused,
    DepthLimitExceeded,
    GroupNotEmpty,
    InvalidGroupType,
)
from services.tenancy.domain.events import (
    TenantGroupCreated,
    TenantGroupDeleted,
    TenantGroupMoved,
    TenantGroupRenamed,
    TenantLocationChanged,
    TenantMoved,
)
from services.tenancy.domain.groups import GroupType, TenantGroup, TreeLimits
from services.tenancy.domain.locations import TenantLocation
from services.tenancy.domain.model import Tenant

ACCOUNT = uuid.uuid4()
LIMITS = TreeLimits(max_depth=4)


def group(name: str, parent: TenantGroup | None = None, type: str = "group") -> TenantGroup:
    made = TenantGroup.create(
        id=uuid.uuid4(), account_id=ACCOUNT, type=type, name=name, parent=parent, limits=LIMITS
    )
    made.pull_events()
    return made


def test_a_group_records_its_lineage_depth_and_creation() -> None:
    europe = group("Europe", type="region")
    north = TenantGroup.create(
        id=uuid.uuid4(),
        account_id=ACCOUNT,
        type=" Group ",
        name="  North  ",
        parent=europe,
        limits=LIMITS,
    )
    assert north.lineage == (europe.id, north.id)
    assert (north.parent_id, north.depth, north.type, north.name) == (
        europe.id,
        2,
        GroupType.GROUP,
        "North",
    )
    assert north.pull_events() == [
        TenantGroupCreated(
            account_id=ACCOUNT, group_id=north.id, parent_id=europe.id, type="group", name="North"
        )
    ]
    assert europe.parent_id is None and europe.depth == 1 and europe.ancestor_ids == ()


def test_group_types_and_names_are_checked() -> None:
    with pytest.raises(InvalidGroupType, match="region, group, site"):
        group("Nowhere", type="continent")
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(InvalidInput):
            group(bad)
    europe = group("Europe")
    with pytest.raises(InvalidInput):
        europe.rename(" ")


def test_a_group_deeper_than_the_limit_is_refused() -> None:
    level = group("L1")
    for depth in range(2, LIMITS.max_depth + 1):
        level = group(f"L{depth}", level)
    assert level.depth == LIMITS.max_depth
    with pytest.raises(DepthLimitExceeded, match="at most 4 levels"):
        group("too deep", level)
    with pytest.raises(ValueError):
        TreeLimits(max_depth=0)


def test_renaming_records_old_and_new_names_and_ignores_the_same_name() -> None:
    north = group("North")
    assert north.rename("North ") is False
    assert north.pull_events() == []
    assert north.rename("North West") is True
    assert north.pull_events() == [
        TenantGroupRenamed(
            account_id=ACCOUNT, group_id=north.id, old_name="North", new_name="North West"
        )
    ]


def test_a_group_moves_with_its_subtree_and_records_where_from_and_to() -> None:
    europe, americas = group("Europe"), group("Americas")
    north = group("North", europe)
    assert north.move_under(americas, subtree_height=2, limits=LIMITS) is True
    assert north.lineage == (americas.id, north.id)
    assert north.pull_events() == [
        TenantGroupMoved(
            account_id=ACCOUNT,
            group_id=north.id,
            old_parent_id=europe.id,
            new_parent_id=americas.id,
        )
    ]
    assert north.move_under(americas, subtree_height=2, limits=LIMITS) is False
    assert north.move_under(None, subtree_height=2, limits=LIMITS) is True
    assert north.lineage == (north.id,) and north.parent_id is None


def test_a_group_cannot_move_under_itself_or_its_descendants() -> None:
    europe = group("Europe")
    north = group("North", europe)
    city = group("City", north)
    for target in (europe, north, city):
        with pytest.raises(CycleRefused):
            europe.move_under(target, subtree_height=3, limits=LIMITS)
    assert europe.lineage == (europe.id,)
    assert europe.pull_events() == []


def test_a_move_that_would_push_the_subtree_past_the_depth_limit_is_refused() -> None:
    deep = group("D2", group("D1"))
    other = group("Other")
    # deep is at depth 2; a 3-level subtree under it would reach depth 5 > 4.
    with pytest.raises(DepthLimitExceeded, match="5 levels deep"):
        other.move_under(deep, subtree_height=3, limits=LIMITS)
    assert other.move_under(deep, subtree_height=2, limits=LIMITS) is True
    assert other.depth == 3


def test_a_group_with_children_or_tenants_is_deleted_only_recursively() -> None:
    north = group("North")
    north.check_deletable(child_groups=0, tenants=0, recursive=False)
    for child_groups, tenants in ((1, 0), (0, 3)):
        with pytest.raises(GroupNotEmpty, match="delete recursively"):
            north.check_deletable(child_groups=child_groups, tenants=tenants, recursive=False)
        north.check_deletable(child_groups=child_groups, tenants=tenants, recursive=True)
    europe = group("Europe")
    south = group("South", europe)
    south.deleted(deleted_groups=3, moved_tenants=7)
    assert south.pull_events() == [
        TenantGroupDeleted(
            account_id=ACCOUNT,
            group_id=south.id,
            name="South",
            deleted_groups=3,
            moved_tenants=7,
            tenants_moved_to=europe.id,
        )
    ]


def test_a_tenant_moves_between_groups_and_out_of_them() -> None:
    tenant = Tenant.create(id=uuid.uuid4(), account_id=ACCOUNT, name="Harbour")
    tenant.pull_events()
    first, second = uuid.uuid4(), uuid.uuid4()
    assert tenant.move_to(first) and tenant.move_to(second) and tenant.move_to(None)
    assert tenant.move_to(None) is False
    events = tenant.pull_events()
    assert all(isinstance(e, TenantMoved) for e in events)
    assert [(e.old_group_id, e.new_group_id) for e in events] == [
        (None, first),
        (first, second),
        (second, None),
    ]


def location(**overrides: object) -> TenantLocation:
    fields: dict[str, object] = {
        "address_lines": ["  Hafenstrasse 1 ", "", "Building B"],
        "city": "Hamburg",
        "postal_code": "20457",
        "region": "",
        "country": " de ",
        "latitude": 53.54,
        "longitude": 9.98,
    } | overrides
    return TenantLocation.set(account_id=ACCOUNT, tenant_id=uuid.uuid4(), **fields)


def test_a_location_is_cleaned_and_recorded() -> None:
    made = location()
    assert made.address_lines == ("Hafenstrasse 1", "Building B")
    assert made.country == "DE"
    [event] = made.pull_events()
    assert isinstance(event, TenantLocationChanged) and event.location == made.snapshot()
    assert location(latitude=None, longitude=None).latitude is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"country": ""},
        {"country": "XX"},
        {"country": "DEU"},
        {"latitude": None},
        {"latitude": 91.0},
        {"longitude": -180.5},
        {"latitude": float("nan")},
        {"address_lines": ["a", "b", "c", "d", "e"]},
        {"postal_code": "1" * 21},
    ],
)
def test_a_bad_location_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        location(**overrides)
