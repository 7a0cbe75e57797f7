"""The package's layers point one way: no import cycle in `firmpay`, and the use cases in
`firmpay.payments` never reach up into the page (`firmpay.web`) or the emails (`firmpay.emails`).

The graph is read from the source with `ast`, so it sees every import a module can run: at module
level, inside functions (lazy imports), and under `TYPE_CHECKING`, with relative imports resolved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import firmpay

PACKAGE_ROOT = Path(firmpay.__file__).parent
UPWARD_FROM_PAYMENTS = ("firmpay.web", "firmpay.emails")
PORTS = "firmpay.payments.ports"

type Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name `from X import ...` reads from, with `.`/`..` resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(module: str, path: Path, known: set[str]) -> set[str]:
    """Every `firmpay` module this module imports, wherever in the file the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve_from(module, is_package, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                # `from firmpay.payments import card` imports the module `card`; `from x import f`, x.
                found.add(submodule if submodule in known else source)
    return {name for name in found if name in known and name != module}


def import_graph() -> Graph:
    modules = package_modules()
    known = set(modules)
    return {name: imported_names(name, path, known) for name, path in modules.items()}


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as the list of modules along it (first repeated last), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(graph[name]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def all_cycles(graph: Graph) -> list[list[str]]:
    """Every cycle that removing one edge at a time would still leave, for a complete message."""
    remaining = {name: set(targets) for name, targets in graph.items()}
    cycles: list[list[str]] = []
    while cycle := find_cycle(remaining):
        cycles.append(cycle)
        remaining[cycle[-2]].discard(cycle[-1])
    return cycles


def upward_edges(graph: Graph) -> list[str]:
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if within(source, "firmpay.payments")
        for target in targets
        if any(within(target, upward) for upward in UPWARD_FROM_PAYMENTS)
    )


def protocols_outside_the_ports() -> list[str]:
    """Every `class X(Protocol)` (or `typing.Protocol`) defined anywhere but the ports module."""
    found = []
    for name, path in package_modules().items():
        if name == PORTS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(base).endswith("Protocol") for base in node.bases):
                found.append(f"{name}.{node.name}")
    return sorted(found)


def test_the_walk_sees_the_package_s_own_imports() -> None:
    # Given the real package: the walk must find edges we know exist, or the checks below prove nothing
    graph = import_graph()
    assert "firmpay.payments" in graph
    assert "firmpay.money" in graph["firmpay.payments.checkout"]
    assert any(within(target, "firmpay.ledger") for target in graph["firmpay.payments.checkout"])


def test_the_walk_finds_a_cycle_and_an_upward_edge_when_there_is_one() -> None:
    # Given a graph with a cycle and an arrow from payments up to web
    graph: Graph = {
        "firmpay.payments.a": {"firmpay.payments.b", "firmpay.web.pages"},
        "firmpay.payments.b": {"firmpay.payments.a"},
        "firmpay.web.pages": set(),
    }
    # Then both are named
    assert find_cycle(graph) == ["firmpay.payments.a", "firmpay.payments.b", "firmpay.payments.a"]
    assert upward_edges(graph) == ["firmpay.payments.a -> firmpay.web.pages"]


def test_relative_imports_resolve_against_the_module_s_package() -> None:
    # Given `from ..ledger import x` in a module and `from . import y` in a package's __init__
    node_module = ast.parse("from ..ledger import x").body[0]
    node_package = ast.parse("from . import y").body[0]
    assert isinstance(node_module, ast.ImportFrom)
    assert isinstance(node_package, ast.ImportFrom)
    # Then they read from the absolute names
    assert resolve_from("firmpay.payments.card", False, node_module) == "firmpay.ledger"
    assert resolve_from("firmpay.payments", True, node_package) == "firmpay.payments"


def test_the_package_has_no_import_cycle() -> None:
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles in firmpay:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_use_cases_never_import_the_page_or_the_emails() -> None:
    edges = upward_edges(import_graph())
    assert not edges, "firmpay.payments imports up into web/emails:\n" + "\n".join(edges)


def test_every_interface_the_use_cases_need_is_in_the_ports_module() -> None:
    assert "PaymentProcessor" in (PACKAGE_ROOT / "payments" / "ports.py").read_text(encoding="utf-8")
    outside = protocols_outside_the_ports()
    assert not outside, f"Protocols outside {PORTS}:\n" + "\n".join(outside)
