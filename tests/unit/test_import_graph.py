"""No import cycles in deliberation/ and worker/, between modules or between apps (issue 12 §1).

What counts as an import: every `import x` and `from x import y` in a module's source, read with
ast, wherever it stands: at module level, inside a function or method (a deferred import that
closes a cycle still ties the two modules both ways), inside try/except. Not counted: imports
under `if TYPE_CHECKING:` (never executed), and the packages above the imported module (importing
a.b.c runs a/__init__ and a/b/__init__, but a package that imports its own submodules would then
make every submodule a cycle). `from a import b` is an edge to the module a.b when there is one,
else to a. Only modules of this repository are nodes; the standard library and packages are not.

Two graphs, each must have no cycle:
- modules: deliberation.runs.services -> deliberation.runs.selectors, ...
- apps: every module under deliberation/<app>/ is the node deliberation.<app> (engine is one
  app), worker/ is the node worker, and each module directly under deliberation/ (settings,
  urls, asgi, safetext, ...) is a node of its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("deliberation", "worker")


def module_names(repo: Path = REPO) -> dict[str, Path]:
    """Every module of the scanned roots: dotted name -> file."""
    names = {}
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            parts = path.relative_to(repo).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            names[name] = path
    return names


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            stack.extend(node.orelse)  # only the else branch runs
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def module_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The repository modules `name` imports (see the module docstring for what counts)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: climb from this module's package
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            child = f"{base}.{alias.name}"
            targets.add(child if child in known else base)
    return {target for target in targets if target in known and target != name}


def module_graph(repo: Path = REPO) -> dict[str, set[str]]:
    names = module_names(repo)
    known = set(names)
    return {name: module_imports(name, path, known) for name, path in names.items()}


def app_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "deliberation" and len(parts) >= 2:
        return ".".join(parts[:2])  # deliberation.runs, deliberation.engine, deliberation.settings
    return parts[0]  # worker


def app_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    apps: dict[str, set[str]] = {}
    for module, targets in modules.items():
        source = app_of(module)
        apps.setdefault(source, set()).update(app_of(t) for t in targets if app_of(t) != source)
    return apps


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one node, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle inside a component, as a -> b -> ... -> a (shortest back to its first node)."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")


def cycles_report(graph: dict[str, set[str]]) -> list[str]:
    return [" -> ".join(cycle_through(graph, component)) for component in strongly_connected(graph)]


# ---------------------------------------------------------------------------------------------


def test_no_module_imports_another_in_a_cycle():
    assert cycles_report(module_graph()) == []


# No app imports another in a cycle either. Where a lower app needs what a higher one keeps, the
# higher one hands it down when Django starts (its AppConfig.ready): runs gives the completion
# cache (worker/models/cache.py) its table, calibration gives registry/clients.py its
# `calibrated:<id>` judges. The builder page, which starts runs, is runs/builder.py.
KNOWN_APP_TIES: set[tuple[str, str]] = set()


def app_cycle_ties(apps: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges that lie on some cycle: both ends in one strongly connected component."""
    ties = set()
    for component in strongly_connected(apps):
        members = set(component)
        ties |= {(source, target) for source in component for target in apps[source] & members}
    return ties


def test_no_app_imports_another_in_a_cycle_beyond_the_known_ties():
    apps = app_graph(module_graph())
    ties = app_cycle_ties(apps)
    # With the known ties removed, no cycle is left at all.
    cut = {app: targets - {t for s, t in KNOWN_APP_TIES if s == app} for app, targets in apps.items()}
    assert cycles_report(cut) == []
    assert KNOWN_APP_TIES <= ties, f"cut, drop from KNOWN_APP_TIES: {sorted(KNOWN_APP_TIES - ties)}"


def private_uses(name: str, path: Path, known: set[str]) -> list[str]:
    """`from m import _x` and `m._x` (m a module of the repository bound by an import) in `name`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: dict[str, str] = {}  # local name -> repository module
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and node.module in known:
                    uses.append(f"{name}: from {node.module} import {alias.name}")
                if f"{node.module}.{alias.name}" in known:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and modules[node.value.id] != name
        ):
            uses.append(f"{name}: {modules[node.value.id]}.{node.attr}")
    return uses


def test_no_module_uses_a_private_name_of_another():
    names = module_names()
    known = set(names)
    assert [use for name, path in names.items() for use in private_uses(name, path, known)] == []


# The checker itself, on a small tree: each kind of import it claims to count closes a cycle.


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


@pytest.mark.parametrize(
    "back_import",
    [
        "from deliberation.a import services\n",
        "def later():\n    from deliberation.a.services import thing\n",  # inside a function
        "from ..a import services\n",  # relative
        "import deliberation.a.services\n",
    ],
)
def test_the_checker_finds_a_cycle_through_each_kind_of_import(tmp_path, back_import):
    repo = write_tree(
        tmp_path,
        {
            "deliberation/__init__.py": "",
            "worker/__init__.py": "",
            "deliberation/a/__init__.py": "",
            "deliberation/b/__init__.py": "",
            "deliberation/a/services.py": "from deliberation.b.tasks import task\n",
            "deliberation/b/tasks.py": back_import,
        },
    )
    graph = module_graph(repo)
    assert cycles_report(graph) == ["deliberation.a.services -> deliberation.b.tasks -> deliberation.a.services"]
    assert cycles_report(app_graph(graph)) == ["deliberation.a -> deliberation.b -> deliberation.a"]


def test_the_checker_ignores_type_checking_imports_and_finds_app_cycles_of_distinct_modules(tmp_path):
    repo = write_tree(
        tmp_path,
        {
            "deliberation/__init__.py": "",
            "worker/__init__.py": "",
            "deliberation/a/__init__.py": "",
            "deliberation/b/__init__.py": "",
            "deliberation/a/services.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from deliberation.b import views\n",
            "deliberation/b/views.py": "from deliberation.a import services\n",
            "deliberation/b/selectors.py": "",
            "worker/tasks.py": "from deliberation.a.selectors import x\n",
            "deliberation/a/selectors.py": "import worker.tasks\n",
        },
    )
    graph = module_graph(repo)
    assert cycles_report(graph) == ["deliberation.a.selectors -> worker.tasks -> deliberation.a.selectors"]
    assert cycles_report(app_graph(graph)) == ["deliberation.a -> worker -> deliberation.a"]
