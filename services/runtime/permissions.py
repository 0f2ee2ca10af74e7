"""What each RPC declares: a permission it needs, or that it is public; read from the protos."""

from dataclasses import dataclass
from types import ModuleType

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from canopy.common.v1 import options_pb2


@dataclass(frozen=True)
class MethodRule:
    full_method: str  # "/canopy.tenancy.v1.TenancyService/CreateTenant"
    permission: str
    public: bool
    # Any verified caller, no permission needed (calls about the caller itself).
    authenticated: bool = False


def method_rule(service: ServiceDescriptor, method: MethodDescriptor) -> MethodRule:
    options = method.GetOptions()
    return MethodRule(
        full_method=f"/{service.full_name}/{method.name}",
        permission=options.Extensions[options_pb2.permission],
        public=options.Extensions[options_pb2.public],
        authenticated=options.Extensions[options_pb2.authenticated],
    )


def services_of(*modules: ModuleType) -> list[ServiceDescriptor]:
    return [svc for module in modules for svc in module.DESCRIPTOR.services_by_name.values()]


def method_rules(*modules: ModuleType) -> dict[str, MethodRule]:
    """Every RPC of the services in the given `_pb2` modules, by full method path."""
    return {
        rule.full_method: rule
        for service in services_of(*modules)
        for rule in (method_rule(service, m) for m in service.methods)
    }


def undeclared(rules: dict[str, MethodRule]) -> list[str]:
    """RPCs that declare none or more than one of: a permission, public, authenticated."""
    return [
        r.full_method
        for r in rules.values()
        if [bool(r.permission), r.public, r.authenticated].count(True) != 1
    ]
