"""Materialised paths of the tenant tree: `/root-id/.../group-id/`, collated "C".

Every path in a group's subtree (the group's own included) starts with the group's path, so
in "C" order they all lie in [path, subtree_end(path)): one range of a B-tree index.
"""

import uuid
from collections.abc import Iterable


def path_of(lineage: Iterable[uuid.UUID]) -> str:
    return "/" + "".join(f"{group_id}/" for group_id in lineage)


def lineage_of(path: str) -> tuple[uuid.UUID, ...]:
    return tuple(uuid.UUID(part) for part in path.strip("/").split("/"))


def subtree_end(path: str) -> str:
    """The first string after every path that starts with `path` ('0' follows '/')."""
    return path[:-1] + "0"
