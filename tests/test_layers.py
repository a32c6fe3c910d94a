"""The layering of the package, as a test: a module imports only from its own layer or below.

Every import counts, the lazy ones inside functions too: a lazy upward import is still an upward
dependency (it was how the only import cycle, api -> results -> api, hid). A new top-level module or
package must be placed in a layer here, which is where the design's layer list lives in code.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "archsearch"

LAYERS: list[set[str]] = [  # bottom first
    {"errors", "versions", "schema", "budget", "_registry", "__version__"},
    {"pareto", "genome"},
    {"space", "trial"},
    {"devices", "blocks"},
    {"kernels", "tasks"},
    {"builder"},
    {"evaluation"},
    {"spaces", "strategies", "scheduling"},
    {"execution"},
    {"console"},
    {"results"},
    {"engine"},
    {"config"},
    {"_plan"},
    {"api", "cli", "listing", "integrations", "testing", "__main__"},
]
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """``archsearch.results.store`` -> ``results``; ``archsearch`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports() -> list[tuple[str, str, int]]:
    """(importing unit, imported unit, line) for every archsearch import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] if node.module != "archsearch" else [
                    f"archsearch.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("archsearch.") and unit_of(module) and unit_of(target) != unit_of(module):
                    found.append((f"{module}:{node.lineno}", unit_of(target), LAYER_OF.get(unit_of(module), -1)))
    return found


def test_every_top_level_module_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    units.discard("conf")
    assert sorted(units - set(LAYER_OF)) == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{where} imports archsearch.{target} (layer {LAYER_OF[target]} > {depth})"
              for where, target, depth in imports() if target in LAYER_OF and LAYER_OF[target] > depth]
    assert upward == []


def test_units_of_one_layer_do_not_import_each_other_in_a_cycle():
    graph: dict[str, set[str]] = {}
    for where, target, _ in imports():
        graph.setdefault(unit_of(where.split(":")[0]), set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(unit for unit in graph if reaches(unit, unit, {unit}))
    assert cycles == []


@pytest.mark.parametrize("module", ["archsearch.pareto"])
def test_the_bottom_layers_need_only_numpy(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'pyarrow', 'optuna', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
