"""Which source files a pipeline step runs: its modules plus every ``instrumentgen`` module they
import, transitively (read from the source with :mod:`ast`, nothing is imported).

Snakemake re-runs a rule when one of its input files changes, but does not track the modules a
``python -m`` command imports; rules therefore list ``code(...)`` as inputs (DESIGN: code changes
re-trigger the rules that run them).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "instrumentgen"
PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(dotted: str, package_dir: Path) -> Path | None:
    """``instrumentgen.data.prune`` → ``<package_dir>/data/prune.py`` (or a package ``__init__``)."""
    parts = dotted.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names of the ``instrumentgen`` modules (or attributes of them) imported by ``path``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def module_files(*entries: str, follow_imports: bool = True, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Files for ``entries`` (paths relative to the package: ``"data/prune.py"``, or a sub-package
    folder ``"synth"`` meaning all its modules) and, with ``follow_imports``, everything they import
    from the package, including the ``__init__.py`` of every package on the way. Sorted, absolute.
    """
    todo: list[Path] = []
    for entry in entries:
        full = package_dir / entry
        if full.is_dir():
            todo += sorted(full.glob("*.py"))
        elif full.is_file():
            todo.append(full)
        else:
            raise FileNotFoundError(f"{full}: no such module or package")
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if not follow_imports:
            continue
        for parent in path.relative_to(package_dir).parents:
            init = package_dir / parent / "__init__.py"
            if init.is_file():
                todo.append(init)
        for dotted in _imports(path):
            found = _module_file(dotted, package_dir)
            if found is not None:
                todo.append(found)
    return sorted(seen)
