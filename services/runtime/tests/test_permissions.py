"""Every RPC in the contracts declares exactly one of: a permission, or public."""

import importlib
import pkgutil

import canopy
from services.runtime.permissions import method_rules, undeclared


def all_pb2_modules() -> list:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(canopy.__path__, "canopy.")
        if info.name.endswith("_pb2")
    ]


def test_every_rpc_declares_a_permission_or_public() -> None:
    rules = method_rules(*all_pb2_modules())
    assert len(rules) > 30, "expected every service's RPCs to be found"
    assert undeclared(rules) == []


def test_an_rpc_without_declaration_is_caught() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    file = descriptor_pb2.FileDescriptorProto(name="probe/undeclared.proto", package="probe")
    file.message_type.add(name="Empty")
    service = file.service.add(name="ProbeService")
    service.method.add(name="Leaky", input_type=".probe.Empty", output_type=".probe.Empty")
    pool = descriptor_pool.DescriptorPool()
    descriptor = pool.Add(file) or pool.FindFileByName("probe/undeclared.proto")

    class Module:
        DESCRIPTOR = descriptor

    assert undeclared(method_rules(Module)) == ["/probe.ProbeService/Leaky"]


def test_permissions_are_named_context_resource_action() -> None:
    rules = method_rules(*all_pb2_modules())
    for rule in rules.values():
        if rule.permission:
            context, _, rest = rule.permission.partition(".")
            resource, _, action = rest.partition(":")
            assert context in rule.full_method.lower(), rule
            assert resource and action, rule
