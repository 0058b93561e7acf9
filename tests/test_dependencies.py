"""Every third-party package the code imports is declared; the install has one namespace."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO

PACKAGE_FOLDERS = ("alphaline", "features", "models", "pipelines", "trading", "flows")
OWN = {"alphaline"}
# Imported by a library on our behalf, so no import statement names them.
LAZY = {"tabulate": "DataFrame.to_markdown"}


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def declared() -> set[str]:
    names = set()
    for spec in _pyproject()["project"]["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        assert match, f"unparsable dependency {spec!r}"
        names.add(normalize(match.group(1)))
    return names


def sources() -> list[Path]:
    return sorted(p for folder in PACKAGE_FOLDERS for p in (REPO / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party module → files importing it (function-local imports too);
    plus the packages pandas and others import lazily for a method the code calls."""
    found: dict[str, set[str]] = {}
    for path in sources():
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "to_markdown"):
                names = ["tabulate"]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, set()).add(rel)
    return found


def test_every_imported_distribution_is_declared():
    providers = importlib.metadata.packages_distributions()
    wanted = declared()
    missing, unknown = [], []
    for module, files in sorted(imported_modules().items()):
        dists = {normalize(d) for d in providers.get(module, [])}
        where = ", ".join(sorted(files)[:3])
        if not dists:
            unknown.append(f"{module} (imported by {where})")
        elif not dists & wanted:
            why = f" for {LAZY[module]}" if module in LAZY else ""
            missing.append(f"{' or '.join(sorted(dists))}: module {module}{why} ({where})")
    assert not unknown, f"imported, but no installed distribution provides: {unknown}"
    assert not missing, ("imported but not declared in pyproject.toml [project].dependencies "
                         "(add them, pinned in constraints.txt):\n  " + "\n  ".join(missing))


def test_every_declared_dependency_is_pinned():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[normalize(name.split("[")[0])] = version
    unpinned = sorted(declared() - set(pins))
    assert not unpinned, f"declared in pyproject.toml, not pinned in constraints.txt: {unpinned}"


def test_installed_package_imports_from_outside_the_repository(tmp_path):
    code = (
        "import importlib.util, sys\n"
        "import alphaline.models.cv, alphaline.trading.ledger, alphaline.flows.cli\n"
        "assert not any(p and __import__('pathlib').Path(p).resolve() == "
        f"__import__('pathlib').Path({str(REPO)!r}) for p in sys.path), sys.path\n"
        "leaked = [n for n in ('models', 'features', 'pipelines', 'trading', 'flows')\n"
        "          if importlib.util.find_spec(n) is not None]\n"
        "assert not leaked, f'generic top-level names importable: {leaked}'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
