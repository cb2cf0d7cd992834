"""The shape of the source tree, read from the source with `ast`: the import graph of
``src/convcli`` has no cycle (imports inside functions count), ``__init__.py`` files hold at most
a docstring, the command line loads neither numpy nor Pillow until a command needs them, and only
``render`` talks to rich."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"
PACKAGE = SRC / "convcli"
HEAVY = ("numpy", "PIL")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def module_name(path: Path, root: Path = SRC) -> str:
    """``src/convcli/ops/conv.py`` -> ``convcli.ops.conv``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE, root: Path = SRC) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(package.rglob("*.py"))}


def imports(tree: ast.AST, name: str, is_package: bool, module_level: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every ``import`` and ``from ... import`` in ``tree``, at any
    depth, or with ``module_level`` only those run when the module is imported (not inside a
    function; ``if TYPE_CHECKING:`` blocks count). ``from a import b`` names ``a`` and ``a.b``:
    b may be a module."""

    def walk(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            yield child
            yield from walk(child)

    for node in walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1 more
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def import_graph(package: Path = PACKAGE, root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the modules of the same package that it imports, anywhere in its code."""
    found = modules(package, root)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        targets = imports(_parse(path), name, path.name == "__init__.py")
        graph[name] = {target for target, _ in targets if target in found}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None if it has none (depth-first search:
    an edge back to a module still on the path closes a cycle)."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# --- the cycle finder and the graph builder, on hand-made inputs --------------------------------


def test_find_cycle_on_small_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"z", "y"}, "z": set()}) == ["y", "y"]
    cycle = find_cycle({"p": {"q"}, "q": {"r"}, "r": {"s"}, "s": {"q"}})
    assert cycle == ["q", "r", "s", "q"]


def test_import_graph_sees_imports_inside_functions(tmp_path):
    """The cycle the old layout hid: two modules import each other, one of them inside a function."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "sub" / "__init__.py").write_text("")
    (package / "network.py").write_text("from pkg.sub import words\n")
    (package / "sub" / "words.py").write_text("def load():\n    from pkg import network\n    return network\n")
    (package / "other.py").write_text("import json\nfrom . import network\n")
    graph = import_graph(package, tmp_path)
    assert graph["pkg.other"] == {"pkg", "pkg.network"}
    assert find_cycle(graph) == ["pkg.network", "pkg.sub.words", "pkg.network"]


# --- the source tree ------------------------------------------------------------------------------


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40  # the whole package was read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_load_is_the_top_of_the_network_path():
    """Words, spec files, the zoo and the report never reach back up to the module that chooses
    among them (that is how the old words -> zoo -> report -> words cycle was held together)."""
    graph = import_graph()
    for name in ("words", "specfile", "zoo", "report", "spec", "costs"):
        assert "convcli.networks.load" not in graph[f"convcli.networks.{name}"], name


def _is_version(node: ast.stmt) -> bool:
    """``__version__ = "..."``"""
    return (
        isinstance(node, ast.Assign)
        and [ast.unparse(t) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def test_init_files_hold_at_most_a_docstring():
    """Importing a package runs nothing, so that start-up stays light; the top package also holds
    its version, a string constant (``convcli --version``, checkpoints and downloads read it)."""
    for path in PACKAGE.rglob("__init__.py"):
        body = _parse(path).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        if path.parent == PACKAGE:
            body = [node for node in body if not _is_version(node)]
        assert body == [], f"{path.relative_to(REPO)} holds more than a docstring: {ast.unparse(body[0])}"


def _module_level_closure(start: list[str]) -> dict[str, str]:
    """Every module of convcli that importing ``start`` runs, mapped to the module that pulls it in."""
    found = modules()
    seen = {name: name for name in start}
    todo = list(start)
    while todo:
        name = todo.pop()
        path = found[name]
        for target, _ in imports(_parse(path), name, path.name == "__init__.py", module_level=True):
            if target in found and target not in seen:
                seen[target] = name
                todo.append(target)
    return seen


def test_the_command_line_imports_no_numpy_or_pillow_at_module_level():
    """Not in cli/, and not in any module cli/ loads when it is imported: shape-calc, params and
    flops must start without them (commands import them inside their bodies)."""
    cli = [name for name in modules() if name.startswith("convcli.cli")]
    offenders = []
    for name, via in sorted(_module_level_closure(cli).items()):
        path = modules()[name]
        for target, line in imports(_parse(path), name, path.name == "__init__.py", module_level=True):
            if target.split(".")[0] in HEAVY:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {target} (loaded by {via})")
    assert offenders == [], "\n".join(offenders)


def test_loading_every_command_module_imports_no_numpy_or_pillow():
    code = (
        "import sys\n"
        "import convcli.cli.app, convcli.cli.networks, convcli.cli.images, convcli.cli.training\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'PIL'})\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_only_render_imports_rich():
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for name, path in modules().items()
        if not name.startswith("convcli.render")
        for target, line in imports(_parse(path), name, path.name == "__init__.py")
        if target.split(".")[0] == "rich"
    ]
    assert offenders == [], f"rich imported outside render/: {', '.join(offenders)}"
