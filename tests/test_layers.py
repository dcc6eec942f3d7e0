"""The package's imports follow the flow: no cycles, and no lower layer importing a higher one.

Read from the source (``ast``), so a lazy import inside a function counts like any other; only
imports under ``if TYPE_CHECKING:`` are left out (they never run). Layers, lowest first, follow
one item's flow: settings -> Stash -> media -> gateway -> cache -> analyzers -> decision ->
journal -> write -> tasks -> entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "ai_tagger"
LAYERS: list[tuple[str, ...]] = [
    (
        "ai_tagger",
        "ai_tagger.errors",
        "ai_tagger.log",
        "ai_tagger.retry",
        "ai_tagger.deps",
        "ai_tagger.configured",
        "ai_tagger.names",
        "ai_tagger.tasks.modes",
        "ai_tagger.analyze.local",
        "ai_tagger.paths",
        "ai_tagger.media.pixels",
    ),
    ("ai_tagger.settings",),
    ("ai_tagger.stash",),
    ("ai_tagger.media",),
    ("ai_tagger.analyze.gateway", "ai_tagger.analyze.providers"),
    ("ai_tagger.store.cache", "ai_tagger.store.transcripts", "ai_tagger.store.faces"),
    ("ai_tagger.analyze",),
    ("ai_tagger.decide",),
    ("ai_tagger.store",),
    ("ai_tagger.write",),
    ("ai_tagger.tasks", "ai_tagger.hooks"),
    ("ai_tagger.entry", "ai_tagger.serve", "ai_tagger.package", "ai_tagger.settings_doc", "ai_tagger.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of the longest matching prefix (``ai_tagger.store.cache`` before ``ai_tagger.store``)."""
    best, found = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "ai_tagger" and module.startswith(prefix + "."))
            if matches and len(prefix) > best:
                best, found = len(prefix), index
    if found < 0 and module == "ai_tagger":
        return 0
    assert found >= 0, f"{module} is in no layer: add it to LAYERS"
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str) -> set[str]:
    """The package modules ``module`` imports at run time."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
               for body in node.body for n in ast.walk(body)}  # fmt: skip
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ai_tagger"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ai_tagger"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer(module)


def test_no_module_imports_one_from_a_higher_layer():
    upward = sorted(
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(module)
    )
    assert upward == []


def test_the_package_has_no_import_cycle():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []
