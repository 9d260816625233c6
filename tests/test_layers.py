"""The package reads like the data flow: no import loops, and no module imports one that stands above it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mnistlab"

# Each module's layer, by the longest matching name; a module may import from its own layer or those before it.
LAYERS = [
    ("ground", ["mnistlab._io", "mnistlab._html", "mnistlab._version", "mnistlab.errors", "mnistlab.choices",
                "mnistlab.config", "mnistlab.settings", "mnistlab.devices", "mnistlab.plots"]),
    ("data", ["mnistlab.data"]),
    ("models", ["mnistlab.models"]),
    ("runs", ["mnistlab.runs", "mnistlab.metrics"]),
    ("training", ["mnistlab.training"]),
    ("shipping", ["mnistlab.predict", "mnistlab.evaluation", "mnistlab.ensemble", "mnistlab.export",
                  "mnistlab.report", "mnistlab.serve", "mnistlab.recipes", "mnistlab.cluster",
                  "mnistlab.reproduce", "mnistlab.sweep"]),
    ("cli", ["mnistlab.cli", "mnistlab.__main__", "mnistlab"]),  # "mnistlab": the package's own __init__ only
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or (prefix != "mnistlab" and module.startswith(prefix + "."))]
    assert matches, f"{module} is in no layer of the data flow; add it to LAYERS"
    return max(matches)[1]


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The import nodes under `if TYPE_CHECKING:`: annotations only, never executed."""
    return {inner for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") ==
            "TYPE_CHECKING" for inner in ast.walk(node)}


def imports(module: str, runtime_only: bool = False) -> set[str]:
    """The mnistlab modules that `module` imports anywhere, in functions too; `runtime_only` leaves out those
    under TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text())
    skip = _type_checking_only(tree) if runtime_only else set()
    found = set()
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from mnistlab import plots` imports a submodule; `from mnistlab.x import name` imports mnistlab.x
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES and n != module}
    return found


GRAPH = {m: imports(m) for m in MODULES}
RUNTIME_GRAPH = {m: imports(m, runtime_only=True) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_one_above_it(module):
    above = sorted(m for m in GRAPH[module] if layer(m) > layer(module))
    assert not above, f"{module} ({LAYERS[layer(module)][0]}) imports {above}, which stand above it"


def test_no_import_loops():
    """Among the imports that run (a type named in an annotation may refer back)."""
    done, path = set(), []

    def visit(module):
        if module in path:
            loop = path[path.index(module):] + [module]
            pytest.fail("import loop: " + " -> ".join(loop))
        if module in done:
            return
        path.append(module)
        for other in sorted(RUNTIME_GRAPH[module]):
            visit(other)
        path.pop()
        done.add(module)

    for module in sorted(RUNTIME_GRAPH):
        visit(module)
