"""Fail on any import circle between modules of Contigo and the sync engine.

import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) keep layers and forbidden
imports; a circle through modules of different packages is what they cannot name, so this
check builds the same import graph with grimp and reports every strongly connected group of
modules. Imports deferred into a function count (deferring an import hides a circle, it does
not remove it); only imports under ``if TYPE_CHECKING:`` are left out.

Usage: ``python -m tools.import_cycles [PACKAGE ...]`` (default: contigo sync); exit status 1
when a circle exists, each printed on one line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

import grimp

DEFAULT_PACKAGES = ("contigo", "sync")


def import_graph(packages: Iterable[str]) -> dict[str, set[str]]:
    """Each module of ``packages`` with the modules of ``packages`` it imports."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True, cache_dir=None)
    modules = graph.modules
    return {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every group of two or more modules that import each other, directly or not (Tarjan's
    strongly connected components, iterative: a deep import chain needs no recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return sorted(found)


def main(argv: Sequence[str] | None = None) -> int:
    packages = list(argv if argv is not None else sys.argv[1:]) or list(DEFAULT_PACKAGES)
    found = circles(import_graph(packages))
    for group in found:
        print("import circle: " + " <-> ".join(group))
    if not found:
        print(f"no import circles in {', '.join(packages)}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
