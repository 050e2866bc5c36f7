"""The layering of ARCHITECTURE.md, checked on the import statements (ast, nothing imported).

- no tool module (one that defines ``SPEC`` or ``SPECS``) imports another tool module: tools share
  code through the helper modules (`tools.dsp`, `tools.loudness`, `tools.metrics`, ...);
- `tools/` never imports `agents`, `app` or `memory`;
- `memory/` never imports `agents` or `app`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, Path]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(path: Path) -> set[str]:
    return _imported(
        path.read_text(encoding="utf-8"), ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    )


def _imported(source: str, package: str) -> set[str]:
    """Every module an import statement names (``from a import b`` gives ``a`` and ``a.b``);
    relative imports are resolved against `package`."""
    tree = ast.parse(source)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _is_tool(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id in ("SPEC", "SPECS") for t in targets):
            return True
    return False


TOOLS = _modules("tools")
TOOL_MODULES = sorted(name for name, path in TOOLS.items() if _is_tool(path))


def _top(name: str) -> str:
    return name.split(".")[0]


def test_tool_modules_are_found() -> None:
    assert {"tools.compress", "tools.master", "tools.eq", "tools.mix"} <= set(TOOL_MODULES)
    assert "tools.dsp" not in TOOL_MODULES and "tools.registry" not in TOOL_MODULES


@pytest.mark.parametrize("module", TOOL_MODULES)
def test_no_tool_imports_another_tool(module: str) -> None:
    others = set(TOOL_MODULES) - {module}
    bad = sorted(name for name in _imports(TOOLS[module]) if name in others)
    assert not bad, (
        f"{module} imports the tool module(s) {bad}; move the shared piece into tools/dsp.py "
        "(or tools/loudness.py, tools/metrics.py) and import it from there"
    )


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("tools", {"agents", "app", "memory"}),
        ("models", {"agents", "app", "memory"}),
        ("memory", {"agents", "app"}),
    ],
)
def test_layers_import_downwards_only(package: str, forbidden: set[str]) -> None:
    bad = {
        name: sorted(i for i in _imports(path) if _top(i) in forbidden)
        for name, path in _modules(package).items()
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{package}/ must not import {sorted(forbidden)} (ARCHITECTURE.md, layers): {bad}"


def test_the_checker_sees_imports() -> None:
    """The parser catches absolute, relative, and function-level imports."""
    names = _imported(
        "from . import a\nfrom .b import c\ndef f():\n    import agents.graph\n    from tools.eq import run\n",
        "tests",
    )
    assert {"tests.a", "tests.b", "tests.b.c", "agents.graph", "tools.eq", "tools.eq.run"} <= names
