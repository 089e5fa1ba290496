"""The import graph of hf_seg's own modules, read from the source with `ast`: cycles and imports hidden in functions.

Run it to see the graph: `python tests/helpers/import_graph.py` prints one line per module with what it imports,
then the cycles (none expected) and the function-level imports (optional heavy dependencies only).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hf_seg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package (package __init__ files under the package's name)."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "mean_iou_dice" not in p.parts}


def _targets(node: ast.AST, known: set[str]) -> list[str]:
    """hf_seg modules an import statement names (`from a.b import c` names a.b.c when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        found = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
        return found or ([node.module] if node.module in known else [])
    return []


def graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """(module -> hf_seg modules it imports at module level, [(module, line, target) imported inside a function])."""
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    hidden = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            for target in _targets(node, known):
                edges[name].add(target)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        what = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                        hidden.append((name, node.lineno, what or "."))
    return edges, hidden


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import): the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main() -> None:
    edges, hidden = graph()
    for name in sorted(edges):
        print(f"{name} -> {', '.join(sorted(edges[name])) or '-'}")
    found = cycles(edges)
    print(f"\n{len(edges)} modules, {sum(map(len, edges.values()))} imports between them, "
          f"{len(found)} cycle(s){': ' + '; '.join(' -> '.join(c) for c in found) if found else ''}")
    print(f"{len(hidden)} import(s) inside functions" + "".join(f"\n  {m}:{line} {what}" for m, line, what in hidden))


if __name__ == "__main__":
    main()
