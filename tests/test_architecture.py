"""The package's shape: no import cycles, layers that only look down, no private reach-ins.

docs/architecture.md draws the layering; this file is what keeps it true. Imports are
read from the source with ``ast`` (nothing is imported), counting imports inside
functions and the module names that lazy ``__getattr__`` maps and ``CLI_MODULES`` give
to ``importlib.import_module``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "langarith"

#: Layers from the bottom up (docs/architecture.md). A module may import its own layer
#: and the ones below, never one above. Keys are module names or package prefixes; the
#: longest matching key wins.
LAYERS: dict[str, int] = {
    "langarith": 0,
    "langarith.io": 0,
    "langarith.paths": 0,
    "langarith.settings": 0,
    "langarith.scripting": 0,
    "langarith.registry": 0,
    "langarith.lazy": 0,
    "langarith.provenance": 0,
    "langarith.cli_options": 0,
    "langarith.task_kinds": 0,
    "langarith.languages": 0,
    "langarith.user_errors": 0,
    "langarith.warm": 0,
    "langarith.arm_registry": 0,
    "langarith.arms": 10,
    "langarith.data": 1,
    "langarith.metrics": 1,
    "langarith.config": 2,
    "langarith.plan": 2,
    "langarith.related": 2,
    "langarith.adapter_io": 3,
    "langarith.mlm": 3,
    "langarith.training": 3,
    "langarith.training.token_files": 3,
    "langarith.training.blocks": 3,
    "langarith.backbone": 4,
    "langarith.modeling": 4,
    "langarith.train": 5,
    "langarith.train.tokens": 5,
    "langarith.xmod": 5,
    "langarith.xmod.plan": 2,
    "langarith.xmod.scoring": 7,
    "langarith.xmod.la": 7,
    "langarith.xmod.report": 9,
    "langarith.merge": 6,
    "langarith.evaluate": 7,
    "langarith.evaluate.nway": 7,
    "langarith.analysis": 8,
    "langarith.analysis_plan": 8,
    "langarith.report": 9,
    "langarith.export": 9,
    "langarith.export_plan": 7,
    "langarith.cost": 9,
    "langarith.cli": 10,
    # the TLR arm (issue 17): one package, each module at the layer of what it uses
    "langarith.tlr": 0,
    "langarith.tlr.metrics": 1,
    "langarith.tlr.variants": 2,
    "langarith.tlr.trainer": 5,
    "langarith.tlr.alignment": 5,
    "langarith.tlr.badx": 5,
    "langarith.tlr.scoring": 7,
    "langarith.tlr.cost": 9,
    "langarith.tlr.register": 9,
    # the arm of task arithmetic with full fine-tuning (langarith.fullft)
    "langarith.fullft": 0,
    "langarith.fullft.variants": 0,
    "langarith.fullft.plan": 2,
    "langarith.fullft.vectors": 6,
    "langarith.fullft.train": 6,
    "langarith.fullft.evaluate": 7,
    "langarith.fullft.cost": 9,
    "langarith.fullft.report": 9,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module an imported dotted name refers to (longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


TOP, FUNCTION, STRING = "top", "function", "string"


def _edges(module: str) -> list[tuple[str, str, str, int]]:
    """(imported module, imported name or "", where, line) of every import of a module.

    ``where`` is :data:`TOP` (module level), :data:`FUNCTION` (inside a function) or
    :data:`STRING` (a module named by a string, for ``importlib.import_module``).
    """
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, str, str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        where = FUNCTION if in_function else TOP
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = _resolve(alias.name)
                    if target:
                        found.append((target, "", where, child.lineno))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    if full in MODULES:
                        found.append((full, "", where, child.lineno))
                    else:
                        target = _resolve(child.module)
                        if target:
                            found.append((target, alias.name, where, child.lineno))
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                text = child.value.split(":")[0]
                if text.startswith(f"{PACKAGE}.") and text in MODULES and text != module:
                    found.append((text, "", STRING, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _, _, _ in _edges(module) if target != module}
        for module in MODULES
    }


def _layer(module: str) -> int:
    key = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[key]


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m != PACKAGE and _layer(m) == 0 and m not in LAYERS]
    assert unplaced == [], f"place these modules in LAYERS and docs/architecture.md: {unplaced}"


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ is run by importing any module inside it; an edge
            # from a module to its own package's lazy map is not a cycle.
            if _is_package(nxt) and node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_only_import_downwards() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)}), line {line}"
        for module in MODULES
        for target, _, _, line in _edges(module)
        if _layer(target) > _layer(module)
        and not (_is_package(target) and module.startswith(target + "."))
    ]
    assert upward == []


def test_no_private_names_imported_across_modules() -> None:
    private = [
        f"{module}:{line} imports {target}.{name}"
        for module in MODULES
        for target, name, _, line in _edges(module)
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert private == []


def test_no_function_level_imports_of_the_package() -> None:
    """Imports of the package's own modules sit at the top, where a reader sees them.

    Only the lazy maps of package ``__init__`` files and the command-line modules (the
    handler of a subcommand) name modules as strings, so ``langarith --help`` does not
    import torch.
    """
    inside = [
        f"{module}:{line} imports {target} inside a function"
        for module in MODULES
        for target, _, where, line in _edges(module)
        if where == FUNCTION
    ]
    strings = [
        f"{module}:{line} names {target} for importlib"
        for module in MODULES
        for target, _, where, line in _edges(module)
        if where == STRING and not _is_package(module) and not _is_cli(module)
    ]
    assert inside + strings == []


#: The slow imports (seconds each) that ``langarith --help`` must not pay for. torch is
#: allowed: the merge command builds its options from the merge registry, whose methods
#: are tensor functions.
SLOW_IMPORTS = ("transformers", "adapters", "datasets", "matplotlib", "lang2vec")


@pytest.mark.parametrize("argv", [["--help"], ["merge", "--help"], ["train", "--help"]])
def test_help_does_not_import_the_slow_libraries(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from langarith.cli import build_parser\n"
        f"try:\n    build_parser().parse_args({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {SLOW_IMPORTS!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


#: What the Snakefile and rules/common.smk import to plan the workflow, the arms included.
PLANNING_IMPORTS = (
    "from langarith.arms import load_arms\n"
    "load_arms()\n"
    "import langarith.analysis_plan, langarith.config, langarith.evaluate.scenarios\n"
    "import langarith.evaluate.label_free, langarith.export_plan, langarith.fullft.plan\n"
    "import langarith.report, langarith.report.rules, langarith.xmod.plan\n"
)


def test_planning_does_not_import_the_slow_libraries() -> None:
    """Every ``snakemake`` run, a dry run too, imports these: scipy.stats alone took over
    a second (the TLR arm's t-test now imports it when it runs), torch some more."""
    slow = (*SLOW_IMPORTS, "scipy.stats", "torch")
    code = f"import sys\n{PLANNING_IMPORTS}print([m for m in {slow!r} if m in sys.modules])\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _is_cli(module: str) -> bool:
    return module == "langarith.cli" or module.endswith(".cli")
