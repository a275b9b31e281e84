"""The shape of the code, checked: no import cycle (imports inside functions included),
domain modules free of HTTP and AMQP and SQL drivers, and no service importing another.

Read from the source with ``ast``, not by importing: a lazy import is an edge too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "clients", "deploy", "bench")
#: What a pure (domain) module may not import: they belong to the edges.
EDGE_LIBRARIES = frozenset({"aiohttp", "aiohttp_jinja2", "aiohttp_sse", "asyncpg", "aio_pika", "aiormq"})
#: Modules that hold domain rules: plain functions and dataclasses (style.md).
PURE = (
    "shared.clock", "shared.errors", "shared.events", "shared.houses", "shared.license", "shared.paging",
    "shared.usernames", "shared.config",
    "services.keygen.activation", "services.keygen.agreement", "services.keygen.keys", "services.keygen.providers",
    "services.users.accounts", "services.users.lockout", "services.users.passwords", "services.users.throttle",
    "services.users.tokens",
    "services.certs.certificates", "services.certs.pki", "services.certs.x509names", "services.certs.crl",
    "services.certs.trusted_list", "shared.authorities",
    "services.console.certfile", "services.console.forms", "services.console.texts",
    "services.ocsp.responder.codec", "services.ocsp.responder.responses", "services.ocsp.responder.registry",
    "services.ocsp.responder.answering",
    "services.ocsp.state.apply", "services.ocsp.state.signers",
    "services.ocsp.log.entry", "services.ocsp.log.buffer", "services.ocsp.log.filters",
    "services.ocsp.online.rules", "services.ocsp.online.keys", "services.ocsp.online.usage",
    "services.ocsp.online.sessions", "services.ocsp.online.expiry", "shared.expiry", "services.certs.expiring",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[str]:
    """Every module named by an import anywhere in ``name`` (inside functions too)."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    package = name if _is_package(name) else name.rpartition(".")[0]
    named = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from pkg import sub` names the submodule when there is one.
                named.append(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
    return named


def _edges(name: str) -> set[str]:
    """What importing ``name`` runs first: each named module and the packages above it,
    except ``name``'s own ancestors (Python has initialised those before ``name``)."""
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    edges = set()
    for target in _imports(name):
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            step = ".".join(parts[:i])
            if step in MODULES and step != name and step not in own:
                edges.add(step)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle():
    graph = {name: _edges(name) for name in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_cycle():
    # The checker itself: a cycle hidden behind an import inside a function is still one.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", PURE)
def test_domain_modules_stay_free_of_the_edges(name):
    assert name in MODULES, f"{name} is listed as pure but does not exist"
    libraries = {target.split(".")[0] for target in _imports(name)}
    assert not libraries & EDGE_LIBRARIES, f"{name} imports {sorted(libraries & EDGE_LIBRARIES)}"


def test_no_service_imports_another():
    crossings = []
    for name in MODULES:
        if not name.startswith("services."):
            continue
        own = name.split(".")[1]
        for target in _imports(name):
            parts = target.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                crossings.append(f"{name} -> {target}")
    assert crossings == []


def test_ocsp_features_depend_one_way():
    """online -> responder, log; state -> responder; responder -> log; never back, and
    only the root modules compose them."""
    allowed = {"responder": {"log"}, "state": {"responder"}, "log": set(), "online": {"responder", "log"}}
    wrong = []
    for name in MODULES:
        parts = name.split(".")
        if parts[:2] != ["services", "ocsp"] or len(parts) < 3 or parts[2] not in allowed:
            continue
        for target in _imports(name):
            tparts = target.split(".")
            if tparts[:2] == ["services", "ocsp"] and len(tparts) > 2 and tparts[2] in allowed \
                    and tparts[2] != parts[2] and tparts[2] not in allowed[parts[2]]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_ocsp_root_holds_only_the_root_modules():
    root = ROOT / "services" / "ocsp"
    files = {p.name for p in root.iterdir() if p.is_file()}
    assert files == {"__init__.py", "__main__.py", "app.py", "config.py", "openapi.py", "consumers.py"}
