"""The permission catalogue, generated from what every canopy.*.v1 RPC declares."""

import importlib
import pkgutil
from types import ModuleType

import canopy
from services.identity.domain.roles import PermissionCatalogue
from services.runtime.permissions import method_rules


def contract_modules() -> list[ModuleType]:
    """Every generated `canopy.<context>.v1.*_pb2` module."""
    found = []
    for context in pkgutil.iter_modules(canopy.__path__):
        try:
            package = importlib.import_module(f"canopy.{context.name}.v1")
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.endswith("_pb2"):
                found.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    return found


def declared_permissions(modules: list[ModuleType] | None = None) -> dict[str, list[str]]:
    """{permission: ["Service.Method", ...]} over the RPCs of `modules` (default: all)."""
    declared: dict[str, list[str]] = {}
    for rule in method_rules(*(modules or contract_modules())).values():
        if rule.permission:
            service, method = rule.full_method.strip("/").split("/")
            declared.setdefault(rule.permission, []).append(
                f"{service.rsplit('.', 1)[-1]}.{method}"
            )
    return declared


def permission_catalogue() -> PermissionCatalogue:
    return PermissionCatalogue.of(declared_permissions())
