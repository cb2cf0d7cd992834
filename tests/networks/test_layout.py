"""The network path imports in one direction: words -> specfile, zoo -> load, never back.

An import inside a function is how a cycle hides (it worked until someone moved it to the top), so
the modules of ``convcli.networks`` import each other at the top only, and those imports form no
cycle.
"""

import ast
from pathlib import Path

import convcli.networks

PACKAGE = Path(convcli.networks.__file__).parent


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The ``convcli.networks`` modules ``path`` imports at its top, and inside functions."""
    top, inner = set(), set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found = {n.split(".")[2] for n in names if n.startswith("convcli.networks.")}
        found &= {p.stem for p in PACKAGE.glob("*.py")}
        (top if node in tree.body else inner).update(found)
    return top, inner


GRAPH = {path.stem: _imports(path) for path in PACKAGE.glob("*.py")}


def test_networks_modules_import_each_other_at_the_top_only():
    assert {name: inner for name, (_, inner) in GRAPH.items() if inner} == {}


def test_the_network_imports_have_no_cycle():
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join(path + (name,))
        if name not in done:
            for other in GRAPH[name][0]:
                visit(other, path + (name,))
            done.add(name)

    for name in GRAPH:
        visit(name, ())


def test_load_is_the_top_of_the_network_path():
    assert "load" not in GRAPH["zoo"][0] | GRAPH["report"][0] | GRAPH["words"][0] | GRAPH["specfile"][0]
