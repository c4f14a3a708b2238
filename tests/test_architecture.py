"""The shape of the import graph inside `gmhf/`, read from the source with `ast` (nothing is imported).

Two rules, both about keeping modules replaceable one at a time:

* **No private names across modules.** A name starting with `_` (a function, class, variable or
  private module) belongs to the module or package that defines it. `from gmhf.a import _x` is
  allowed only when `_x` is a private *module* of the importing module's own package (e.g.
  `gmhf.testing.contracts` may import `gmhf.testing._violations`); a private module is likewise
  importable only from inside its package. What another module needs is made public or moved.
* **No import cycles.** Counting the imports that run when a module is imported (module and class
  level, not inside functions, not under `if TYPE_CHECKING:`), no gmhf module may reach itself. A
  cycle makes import order matter and forces one side into a lazy import; move what both share
  into a third module instead.

And the size budget of STYLE.md, over `gmhf/` and `bench/`: a module stays within 400 lines, and a
function over 50 lines (from `def` to its last line) says why in a `# Long:` comment in its body.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gmhf"
#: The most lines a function may have without a `# Long:` comment saying why, and a module at all.
LONG_FUNCTION, LONG_MODULE = 50, 400
#: Exempt from the module budget: its docstrings are the plugin manual (STYLE.md, habit 3).
LONG_MODULES_ALLOWED = {"gmhf/plugins/hookspecs.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _package_of(module: str) -> str:
    """The package a module's relative imports resolve against."""
    is_package = MODULES[module].name == "__init__.py"
    return module if is_package else module.rpartition(".")[0]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, *, load_time: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement; with `load_time`, only those that run when the module is imported."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if load_time and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if load_time and isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for each alias of an import statement."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    source = _absolute(module, node)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in MODULES:
            yield submodule, None
        else:
            yield source, alias.name


def _private_part(module: str) -> str | None:
    """The package a private module is private to (the prefix before its first `_` part), if any."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def private_in(module: str, source: str, label: str) -> list[str]:
    """`label:line: what` for each private name or private module `module`'s source imports against the rule."""
    found: list[str] = []
    for node in sorted(_imports(ast.parse(source), load_time=False), key=lambda n: (n.lineno, n.col_offset)):
        for target, name in _targets(module, node):
            if not target.startswith("gmhf"):
                continue
            if name is not None and name.startswith("_") and not name.startswith("__"):
                found.append(f"{label}:{node.lineno}: imports private name `{name}` from `{target}`")
            owner = _private_part(target)
            if owner is not None and not (module == owner or module.startswith(owner + ".")):
                found.append(f"{label}:{node.lineno}: imports `{target}`, private to `{owner}`")
    return found


def private_imports() -> list[str]:
    """Every breach of the private-name rule in the package."""
    return [hit for module, path in MODULES.items()
            for hit in private_in(module, path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]


def import_graph() -> dict[str, set[str]]:
    """gmhf module -> the gmhf modules it imports when it is itself imported."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree, load_time=True):
            for target, _ in _targets(module, node):
                if target in MODULES and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of gmhf modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_shortest_cycle(graph, c) for c in components]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_the_checks_see_every_module() -> None:
    """The scan reads the package, so an empty result means something."""
    assert "gmhf.dsl.check" in MODULES and "gmhf.testing.contracts" in MODULES
    assert "gmhf.dsl.parse" in import_graph()["gmhf.dsl.check"]


def test_load_time_imports_skip_function_bodies_and_type_checking_blocks() -> None:
    """What runs at import: module and class level, and the `else` of `if TYPE_CHECKING:`."""
    source = ("import gmhf.a\nif TYPE_CHECKING:\n    import gmhf.b\nelse:\n    import gmhf.c\n"
              "def f() -> None:\n    import gmhf.d\nclass K:\n    import gmhf.e\n")
    names = sorted(a.name for n in _imports(ast.parse(source), load_time=True) for a in n.names)
    assert names == ["gmhf.a", "gmhf.c", "gmhf.e"]


def test_private_rule_tells_shared_private_modules_from_private_names() -> None:
    """A package's own private module is fine; a private name, or another package's private module, is not."""
    source = ("from gmhf.testing._violations import Violations\n"
              "from gmhf.dsl.check import _Checker\n"
              "def later() -> None:\n    from gmhf.testing import _draws\n")
    assert private_in("gmhf.testing.contracts", source, "x.py") == [
        "x.py:2: imports private name `_Checker` from `gmhf.dsl.check`"]
    assert private_in("gmhf.cli.spec", source, "y.py") == [
        "y.py:1: imports `gmhf.testing._violations`, private to `gmhf.testing`",
        "y.py:2: imports private name `_Checker` from `gmhf.dsl.check`",
        "y.py:4: imports `gmhf.testing._draws`, private to `gmhf.testing`",
    ]


def test_cycle_finder_reports_the_loop() -> None:
    """A two-module loop and a self-contained chain: only the loop is reported."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert cycles(graph) == [["a", "b", "a"]]


def test_no_private_names_are_imported_across_modules() -> None:
    """See the module docstring for the rule."""
    found = private_imports()
    assert not found, "private imports across modules:\n" + "\n".join(found)


def test_no_import_cycles_between_gmhf_modules() -> None:
    """Module-level imports only: a function-level or TYPE_CHECKING import does not run at load."""
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def _budgeted() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def unexplained_long_functions(source: str, label: str) -> list[str]:
    """`label:line: name (n lines)` for each function over LONG_FUNCTION lines with no `# Long:` comment line."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        body = lines[node.lineno:node.end_lineno]
        if length > LONG_FUNCTION and not any(line.strip().startswith("# Long:") for line in body):
            found.append(f"{label}:{node.lineno}: {node.name} ({length} lines)")
    return sorted(found, key=lambda hit: int(hit.split(":")[1]))


def test_long_function_rule_counts_from_def_to_last_line() -> None:
    """51 lines from `def` need the comment, 50 do not; the comment must be a line of the body."""
    def function(name: str, lines: int, comment: str = "") -> str:
        return f"def {name}() -> None:\n" + comment + "    x = 1\n" * (lines - 1 - bool(comment))

    source = function("fifty", 50) + function("fifty_one", 51) + function("said", 51, "    # Long: a reason.\n")
    assert unexplained_long_functions(source, "x.py") == ["x.py:51: fifty_one (51 lines)"]


def test_long_functions_say_why() -> None:
    """STYLE.md: a function body over 50 lines only with a comment saying why (`# Long: ...`)."""
    found = [hit for path in _budgeted()
             for hit in unexplained_long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not found, "functions over 50 lines without a `# Long:` comment:\n" + "\n".join(found)


def test_modules_stay_within_400_lines() -> None:
    """STYLE.md: a module of `gmhf/` or `bench/` is at most 400 lines (split it by concept when it grows)."""
    found = [f"{label} ({count} lines)" for path in _budgeted()
             if (label := str(path.relative_to(ROOT))) not in LONG_MODULES_ALLOWED
             and (count := len(path.read_text(encoding="utf-8").splitlines())) > LONG_MODULE]
    assert not found, "modules over 400 lines:\n" + "\n".join(found)
