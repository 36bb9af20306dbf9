"""The layer contract of src/cellmoa, read from the source with ``ast`` (nothing is imported).

Layers, lowest first: the base modules (``cellmoa``, ``columns``, ``files``, ``logs``,
``validation``, ``intervals``), then ``data``, ``preprocess``, ``segment``, ``train``, ``features``,
``profiles``, ``evaluate``, ``report``, and ``config`` and ``cli`` on top. A module imports only
from its own layer or lower ones (function-level imports included: a lazy import is still a
dependency); no two modules import each other, directly or round a longer loop; a first-party import
inside a function says why on its line or the line above (a ``#`` comment); and no module is over
400 lines (a newcomer reads one module at a time).
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

pytestmark = pytest.mark.unit

SRC = ROOT / "src"
PACKAGE = "cellmoa"
#: the layers, lowest first: a module's layer is that of the longest prefix of its name listed
LAYERS = (
    (
        "cellmoa",
        "cellmoa.columns",
        "cellmoa.files",
        "cellmoa.logs",
        "cellmoa.validation",
        "cellmoa.intervals",
    ),
    ("cellmoa.data",),
    ("cellmoa.preprocess",),
    ("cellmoa.segment",),
    ("cellmoa.train",),
    ("cellmoa.features",),
    ("cellmoa.profiles",),
    ("cellmoa.evaluate",),
    ("cellmoa.report",),
    ("cellmoa.config",),
    ("cellmoa.cli", "cellmoa.cli_profiles"),
)
#: the base modules are single modules: cellmoa.columns, not a package cellmoa.columns.*
BASE_PACKAGE_ONLY = "cellmoa"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def layer_of(name: str) -> int | None:
    """The layer index of a first-party module, or None where no layer claims it."""
    best, index = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            exact_only = prefix == BASE_PACKAGE_ONLY
            if (name == prefix or (not exact_only and name.startswith(prefix + "."))) and len(
                prefix
            ) > best:
                best, index = len(prefix), i
    return index


def layer_name(index: int) -> str:
    return "base" if index == 0 else LAYERS[index][0].removeprefix("cellmoa.")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the first-party module imported (a package's __init__ for its attributes)
    line: int
    end_line: int
    in_function: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(source: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = source if MODULES[source].name == "__init__.py" else source.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def imports_of(source: str) -> list[Import]:
    """The first-party imports of a module, with where they are (``if TYPE_CHECKING`` left out)."""
    tree = ast.parse(MODULES[source].read_text(), str(MODULES[source]))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(source, node)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                    for a in node.names
                ]
            for target in dict.fromkeys(targets):
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    found.append(Import(source, target, node.lineno, node.end_lineno, in_function))
            return
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


IMPORTS = {name: imports_of(name) for name in MODULES}


def comment_lines(path: Path) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT}


def test_every_module_has_a_layer():
    assert MODULES, f"no modules under {SRC / PACKAGE}"
    unplaced = sorted(name for name in MODULES if layer_of(name) is None)
    assert not unplaced, f"modules no layer claims (add them to LAYERS in {__file__}): {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    wrong = []
    for name, imports in IMPORTS.items():
        own = layer_of(name)
        for imp in imports:
            theirs = layer_of(imp.target)
            if own is not None and (theirs is None or theirs > own):
                where = layer_name(theirs) if theirs is not None else "no layer"
                wrong.append(
                    f"{MODULES[name].relative_to(ROOT)}:{imp.line}: {name} ({layer_name(own)}) "
                    f"imports {imp.target} ({where})"
                )
    assert not wrong, "imports from a higher layer:\n" + "\n".join(wrong)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def test_import_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = {
        name: {imp.target for imp in imports if imp.target in MODULES and imp.target != name}
        for name, imports in IMPORTS.items()
    }
    cycles = import_cycles(graph)
    detail = []
    for cycle in cycles:
        members = set(cycle)
        detail.extend(
            f"  {MODULES[imp.source].relative_to(ROOT)}:{imp.line}: {imp.source} -> {imp.target}"
            for name in cycle
            for imp in IMPORTS[name]
            if imp.target in members and imp.target != name
        )
    assert not cycles, f"import cycles: {cycles}\n" + "\n".join(detail)


def test_function_local_first_party_imports_say_why():
    silent = []
    for name, imports in IMPORTS.items():
        local = [imp for imp in imports if imp.in_function]
        if not local:
            continue
        comments = comment_lines(MODULES[name])
        silent.extend(
            f"{MODULES[name].relative_to(ROOT)}:{imp.line}: {imp.target}"
            for imp in local
            if not comments & set(range(imp.line - 1, imp.end_line + 1))
        )
    assert not silent, (
        "function-local first-party imports without a comment saying why (on the line or the "
        "line above; else move them to the module's top):\n" + "\n".join(sorted(set(silent)))
    )


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


MAX_FUNCTION_LINES = 80


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """The functions (and methods) of ``source`` longer than ``limit`` lines, with their length."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_long_functions_are_found():
    body = "\n".join(f"    x{i} = {i}" for i in range(85))
    assert long_functions(f"def f():\n{body}\n\ndef g():\n    pass\n") == [("f", 86)]


def test_no_function_is_over_80_lines():
    long = {
        f"{path.relative_to(ROOT)}:{name}": n
        for path in MODULES.values()
        for name, n in long_functions(path.read_text())
    }
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {long}"
