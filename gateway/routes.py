"""The route table, built at start-up from the protos' `google.api.http` options.

Every RPC with an http option becomes a route; an RPC without one is internal and never
reachable over HTTP. Path templates follow google.api.http: literal segments, `{field}`,
`{field=pattern/*}`, `*`, `**` and a trailing `:verb`.
"""

import importlib
import pkgutil
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from services.runtime.config import DEFAULT_PORTS
from services.runtime.permissions import method_rule

CONTEXTS: tuple[str, ...] = tuple(DEFAULT_PORTS)
HTTP_VERBS = ("get", "put", "post", "delete", "patch")

_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class TemplateError(ValueError):
    """A path template the gateway cannot serve."""


@dataclass(frozen=True)
class PathTemplate:
    """A google.api.http path template compiled to a regular expression."""

    template: str
    variables: tuple[str, ...]  # field paths, e.g. ("dropzone_id",)
    regex: re.Pattern[str]
    # Literal segments count for specificity: more literal wins when two templates match.
    literal_count: int

    @classmethod
    def parse(cls, template: str) -> "PathTemplate":
        if not template.startswith("/"):
            raise TemplateError(f"{template!r}: a path template starts with /")
        path, verb = template[1:], ""
        last = path.rsplit("/", 1)[-1]
        if ":" in last and "}" not in last.split(":", 1)[1]:
            path, verb = path.rsplit(":", 1)
            if not _LITERAL.match(verb):
                raise TemplateError(f"{template!r}: bad verb {verb!r}")
        variables: list[str] = []
        parts: list[str] = []
        literals = 0
        for segment in _segments(path, template):
            if segment.startswith("{"):
                name, _, pattern = segment[1:-1].partition("=")
                if not _FIELD_PATH.match(name) or name in variables:
                    raise TemplateError(f"{template!r}: bad variable {name!r}")
                variables.append(name)
                group = "/".join(_wildcard(p, template) for p in (pattern or "*").split("/"))
                parts.append(f"(?P<v{len(variables) - 1}>{group})")
            elif segment in ("*", "**"):
                parts.append(_wildcard(segment, template))
            elif _LITERAL.match(segment):
                literals += 1
                parts.append(re.escape(segment))
            else:
                raise TemplateError(f"{template!r}: bad segment {segment!r}")
        pattern = "/" + "/".join(parts) + (re.escape(":" + verb) if verb else "")
        literals += 1 if verb else 0
        return cls(template, tuple(variables), re.compile(pattern + r"\Z"), literals)

    def match(self, path: str) -> dict[str, str] | None:
        """The variables of `path` (percent-decoded already), or None when it does not match."""
        found = self.regex.match(path)
        if found is None:
            return None
        return {name: found.group(f"v{i}") for i, name in enumerate(self.variables)}

    @property
    def openapi_path(self) -> str:
        """The template as an OpenAPI path: `{field=pattern}` becomes `{field}`."""
        return re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", self.template)


def _segments(path: str, template: str) -> list[str]:
    """Split on '/' outside braces (a variable's pattern may contain '/')."""
    segments, depth, current = [], 0, ""
    for char in path:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    if depth != 0 or any(not s for s in segments):
        raise TemplateError(f"{template!r}: empty segment or unbalanced braces")
    return segments


def _wildcard(segment: str, template: str) -> str:
    if segment == "*":
        return r"[^/:]+"
    if segment == "**":
        return r"[^:]+"
    if _LITERAL.match(segment):
        return re.escape(segment)
    raise TemplateError(f"{template!r}: bad pattern segment {segment!r}")


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    context: str  # "identity": which service's channel carries the call
    service: ServiceDescriptor
    method: MethodDescriptor
    http_method: str  # "GET", "POST", ...
    template: PathTemplate
    body: str  # "*", a field name, or "" (no body)
    request_class: type[Message]
    response_class: type[Message]
    stub_class: type[Any]  # the generated <X>ServiceStub
    permission: str
    public: bool
    # Any verified caller, about itself: no account resolution and no permission check.
    authenticated: bool = False
    # 0 for the rule itself, 1.. for its additional bindings.
    binding: int = 0

    @property
    def operation_id(self) -> str:
        """Unique per route: an additional binding gets its index appended."""
        base = f"{self.service.name}.{self.method.name}"
        return f"{base}.{self.binding}" if self.binding else base

    @property
    def full_method(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"


def _specificity(route: Route) -> tuple[int, int, str]:
    template = route.template
    return (-template.literal_count, len(template.variables), template.template)


@dataclass(frozen=True)
class Match:
    route: Route
    path_params: dict[str, str]


class RouteTable:
    """Every route, most specific first; finds the route of a request or says why none."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=_specificity)
        seen: dict[tuple[str, str], Route] = {}
        for route in self.routes:
            key = (route.http_method, route.template.regex.pattern)
            if key in seen:
                raise TemplateError(
                    f"{route.operation_id} and {seen[key].operation_id} both bind "
                    f"{route.http_method} {route.template.template}"
                )
            seen[key] = route

    def match(self, http_method: str, path: str) -> Match | list[str]:
        """The matching route, or the methods allowed on `path` (empty: no such path)."""
        allowed: list[str] = []
        for route in self.routes:
            params = route.template.match(path)
            if params is None:
                continue
            if route.http_method == http_method:
                return Match(route, params)
            if route.http_method not in allowed:
                allowed.append(route.http_method)
        return allowed

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)


def contract_modules(contexts: Iterable[str] = CONTEXTS) -> list[tuple[str, ModuleType]]:
    """Every generated `canopy.<context>.v1.*_pb2` module, with its context."""
    found = []
    for context in contexts:
        package = importlib.import_module(f"canopy.{context}.v1")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.endswith("_pb2"):
                found.append((context, importlib.import_module(f"{package.__name__}.{info.name}")))
    return found


def http_rules(method: MethodDescriptor) -> list[http_pb2.HttpRule]:
    """The method's http rule and its additional bindings; empty for internal RPCs."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    return [rule, *rule.additional_bindings]


def verb_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind in HTTP_VERBS:
        return kind.upper(), getattr(rule, kind)
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    raise TemplateError(f"http rule without a pattern: {rule}")


def routes_of(context: str, module: ModuleType) -> list[Route]:
    grpc_module = importlib.import_module(module.__name__ + "_grpc")
    routes = []
    for service in module.DESCRIPTOR.services_by_name.values():
        stub_class = getattr(grpc_module, f"{service.name}Stub")
        for method in service.methods:
            rules = http_rules(method)
            if not rules:
                continue
            if method.client_streaming or method.server_streaming:
                raise TemplateError(f"{service.name}.{method.name}: only unary RPCs go over HTTP")
            access = method_rule(service, method)
            request_class = message_factory.GetMessageClass(method.input_type)
            for binding, rule in enumerate(rules):
                http_method, path = verb_and_path(rule)
                template = PathTemplate.parse(path)
                _check_fields(method, template, rule.body)
                routes.append(
                    Route(
                        context=context,
                        service=service,
                        method=method,
                        http_method=http_method,
                        template=template,
                        body=rule.body,
                        request_class=request_class,
                        response_class=message_factory.GetMessageClass(method.output_type),
                        stub_class=stub_class,
                        permission=access.permission,
                        public=access.public,
                        authenticated=access.authenticated,
                        binding=binding,
                    )
                )
    return routes


def _check_fields(method: MethodDescriptor, template: PathTemplate, body: str) -> None:
    """Path variables and a body field name must be fields of the request (fail at start-up)."""
    for field_path in [*template.variables, *([body] if body not in ("", "*") else [])]:
        descriptor = method.input_type
        for name in field_path.split("."):
            field = descriptor.fields_by_name.get(name)
            if field is None:
                raise TemplateError(
                    f"{method.full_name}: {field_path!r} is not a field of {method.input_type.name}"
                )
            descriptor = field.message_type


def build_routes(contexts: Iterable[str] = CONTEXTS) -> RouteTable:
    """The gateway's route table from every context's contracts."""
    modules = contract_modules(contexts)
    return RouteTable(route for context, module in modules for route in routes_of(context, module))
