"""Which source files a pipeline step runs: its modules plus every ``instrumentgen`` module they
import, transitively (read from the source with :mod:`ast`, nothing is imported).

Snakemake re-runs a rule when one of its input files changes, but does not track the modules a
``python -m`` command imports; rules therefore list ``code(...)`` as inputs (DESIGN: code changes
re-trigger the rules that run them).
"""

from __future__ import annotations

import ast
import hashlib
import sys
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


def module_files(*entries: str, follow_imports: bool = True, exclude: tuple[str, ...] = (),
                 package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Files for ``entries`` (paths relative to the package: ``"data/prune.py"``, or a sub-package
    folder ``"synth"`` meaning all its modules) and, with ``follow_imports``, everything they import
    from the package, including the ``__init__.py`` of every package on the way. Sorted, absolute.

    ``exclude`` (paths relative to the package) are neither listed nor followed: the modules of an
    encoder kind that a profile does not use (imported lazily, only for the other kind).
    """
    excluded = {(package_dir / e).resolve() for e in exclude}
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
        if path in seen or path.resolve() in excluded:
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


def loaded_code_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the source of every package module imported so far in this process: the code
    that actually ran (for resume fingerprints; call it after the models are loaded)."""
    package_dir = Path(package_dir).resolve()
    loaded = (Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None))
    return source_digest([f for f in loaded if f.is_relative_to(package_dir)], package_dir)


def source_digest(files, package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the names (relative to ``package_dir``) and contents of the source ``files``."""
    package_dir = Path(package_dir).resolve()
    h = hashlib.sha256()
    for f in sorted({Path(f).resolve() for f in files}):
        h.update(str(f.relative_to(package_dir)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
