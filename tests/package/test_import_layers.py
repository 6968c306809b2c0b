"""Imports flow one way (internal helpers -> util -> base -> model kinds -> cli) and never form a cycle.

Read from the source with ``ast``: every import counts, those inside functions too; only imports
under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "python" / "embedforge"

#: Layer of each top-level part of the package; a module may import its own layer and those below.
LAYERS = {
    "_core": 0,
    "_version": 0,
    "_internal": 0,
    "exceptions": 0,
    "util": 1,
    "optim": 2,
    "static": 2,
    "base": 3,
    "sentence_transformer": 4,
    "cross_encoder": 4,
    "cli": 5,
    "data_augmentation": 5,
    "": 5,  # the package itself: the public facade
}
#: Model kinds: siblings on one layer that must not import each other.
KINDS = {"sentence_transformer", "cross_encoder"}


def module_name(path: Path) -> str:
    parts = ["embedforge", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}
#: The compiled extension: a module with no Python source, at the bottom layer.
NATIVE = "embedforge._core"


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imported_modules(name: str, path: Path) -> set[str]:
    """The embedforge modules ``name`` imports anywhere, resolved to files of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES.keys() | {NATIVE} else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import embedforge.a.b` imports the deepest module that exists.
            while target and target not in MODULES and target != NATIVE:
                target = target.rpartition(".")[0]
            if target.startswith("embedforge") and target != name:
                found.add(target)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_import_respects_the_layers() -> None:
    violations = []
    for module, targets in GRAPH.items():
        source = part_of(module)
        for target in targets:
            destination = part_of(target)
            if destination not in LAYERS or source not in LAYERS:
                violations.append(f"{module} -> {target}: unknown part of the package")
            elif LAYERS[destination] > LAYERS[source]:
                violations.append(f"{module} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[destination]})")
            elif source in KINDS and destination in KINDS and source != destination:
                violations.append(f"{module} imports {target}: model kinds never import each other")
            elif source != "" and destination == "":
                violations.append(f"{module} imports the package facade; import the defining module instead")
    assert not violations, "\n".join(sorted(violations))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
                continue
            if child not in graph:
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_no_import_cycles() -> None:
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
