"""Check that streamkit's imports point down its layers (docs/architecture.md).

    python tools/check_layers.py            # prints every upward import and cycle; exit 1

Every ``import`` of a streamkit module counts: at module level, inside functions, and
under ``TYPE_CHECKING`` (a type-only import ties the modules as much as any other when
a reader follows the code). A module may import modules of its own layer or below; two
top-level units (``streams``, ``topics``, ``app``, ...) must not import each other in a
cycle. The one allowed upward pair is the App's entry points: ``App.main()`` imports
the command line and ``App.run_worker()`` the worker.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "streamkit"

#: top-level units from the top layer down; units on one line share a layer
LAYERS: list[tuple[str, ...]] = [
    ("__init__",),                                  # the package's face
    ("cli", "web", "wire"),                         # command line, HTTP, Kafka protocol
    ("worker", "commit", "timers"),
    ("app",),
    ("agents", "tables", "joins"),
    ("streams", "topics"),
    ("models", "serializers", "avro"),
    ("transport", "clients", "producer", "producer_txn", "consumer", "assigned",
     "client_metrics", "internal_topics"),
    ("log",),
    ("windows", "errors", "types", "names", "settings", "monitor", "partitioner",
     "signals", "terminal"),
]
RANK = {unit: len(LAYERS) - i for i, units in enumerate(LAYERS) for unit in units}
#: (importing module, imported unit) allowed to point up: the App's entry points
ALLOWED_UP = {("streamkit.app", "cli"), ("streamkit.app", "worker")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """``streamkit.streams.stream`` -> ``streams``; ``streamkit`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every streamkit module ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.split(".")[0] == "streamkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "streamkit":
                continue
            for alias in node.names:       # ``from streamkit import names``: a module
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if _is_module(sub) else target))
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def check() -> list[str]:
    """Every upward import and every cycle between units, as lines to print."""
    problems = []
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        unit = unit_of(here)
        if unit not in RANK:
            problems.append(f"{path.relative_to(PACKAGE.parent)}: unit {unit!r} has no "
                            "layer in tools/check_layers.py")
            continue
        for line, target in imports_of(path):
            other = unit_of(target)
            if other == unit or other not in RANK:
                continue
            edges[unit].add(other)
            if RANK[other] > RANK[unit] and (here, other) not in ALLOWED_UP:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unit} "
                                f"imports {target}, a layer up")
    problems += [f"units importing each other in a loop: {', '.join(group)}"
                 for group in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of units that import each other, directly or around a loop (the strongly
    connected components of more than one unit, Tarjan's algorithm); the allowed
    upward pairs are left out."""
    allowed = {(unit_of(m), u) for m, u in ALLOWED_UP}
    graph = {u: sorted(v for v in vs if (u, v) not in allowed) for u, vs in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for unit in sorted(graph):
        if unit not in index:
            connect(unit)
    return groups


def main() -> None:
    problems = check()
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
