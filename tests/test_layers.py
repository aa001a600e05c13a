"""Lower layers never import higher ones: the packages of src/synthwright, with an arrow for
every import (those inside functions too), hold no cycle (issue 23)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "src" / "synthwright"


def imports_between_packages() -> dict[str, dict[str, list[str]]]:
    """package -> package it imports -> the files that do (every import statement, at any depth)."""
    arrows: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    layers = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "synthwright" and len(parts) > 1 and parts[1] in layers and parts[1] != here:
                    arrows[here][parts[1]].append(str(path.relative_to(REPO)))
    return arrows


def test_no_package_imports_one_that_imports_it_back():
    arrows = imports_between_packages()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(arrows.get(current, {}))
        return False

    loops = [f"{a} -> {b} ({', '.join(sorted(set(files)))}) and back" for a, targets in arrows.items()
             for b, files in targets.items() if reaches(b, a)]
    assert not loops, "\n".join(loops)
