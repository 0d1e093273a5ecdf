"""The import rules of ARCHITECTURE.md, checked on the source: every import of every module,
including those inside functions and under TYPE_CHECKING, since a lazy import is still an
arrow between layers."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO

# discovery's layers, lowest first; a module may import its own layer and those below.
LAYERS = ("domain", "config", "store", "engine", "frontends")
PACKAGES = ("discovery", "models", "simulators")
# Third-party packages a layer must not reach for: the domain is science, not storage or
# tracking; models and simulators never touch the campaign's store or MLflow.
FORBIDDEN_THIRD_PARTY = {
    "discovery.domain": {"sqlalchemy", "mlflow", "typer", "fastapi", "alembic"},
    "models": {"sqlalchemy", "mlflow", "typer", "fastapi", "alembic"},
    "simulators": {"sqlalchemy", "mlflow", "typer", "fastapi", "alembic"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if "migrations" not in path.parts  # Alembic's scripts, loaded by path
    }


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute names of everything `module` imports (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from discovery.engine import faults` imports the module discovery.engine.faults
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = source_modules()
IMPORTS = {name: imports_of(path, name) for name, path in MODULES.items()}


def layer(module: str) -> str | None:
    """The discovery layer a module belongs to (config.py is the config layer)."""
    parts = module.split(".")
    if parts[0] != "discovery" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def project_imports(module: str) -> set[str]:
    """The imports of `module` that name one of this project's modules."""
    return {name for name in IMPORTS[module] if name in MODULES}


def test_the_rules_see_every_layer_and_package():
    seen = {layer(m) for m in MODULES} - {None}
    assert seen == set(LAYERS)
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    # the parser resolves the forms used in the code base
    assert "discovery.engine.faults" in IMPORTS["discovery.engine.stages.generate"]


def test_each_layer_imports_only_itself_and_the_layers_below():
    upward = []
    for module in MODULES:
        own = layer(module)
        if own is None:
            continue
        for target in project_imports(module):
            other = layer(target)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{module} ({own}) imports {target} ({other})")
    assert not upward, "\n".join(upward)


def test_models_and_simulators_never_import_the_engine_or_each_other():
    wrong = [
        f"{module} imports {target}"
        for module in MODULES
        if module.split(".")[0] in ("models", "simulators")
        for target in project_imports(module)
        if target.split(".")[0] != module.split(".")[0]
    ]
    assert not wrong, "\n".join(wrong)


# Which of models/ and simulators/ each lower layer may use: the domain and the store stay
# free of torch and ASE; the config reads only the simulators' backend registry.
REACH_INTO_MODELS_AND_SIMULATORS = {
    "domain": set(),
    "store": set(),
    "config": {"simulators.registry"},
}


def test_lower_layers_reach_models_and_simulators_only_where_allowed():
    wrong = []
    for module in MODULES:
        allowed = REACH_INTO_MODELS_AND_SIMULATORS.get(layer(module) or "")
        if allowed is None:
            continue
        for target in project_imports(module):
            if target.split(".")[0] in ("models", "simulators") and target not in allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_layers_keep_away_from_storage_and_tracking_libraries():
    wrong = []
    for module in MODULES:
        for prefix, banned in FORBIDDEN_THIRD_PARTY.items():
            if module == prefix or module.startswith(prefix + "."):
                hits = {name.split(".")[0] for name in IMPORTS[module]} & banned
                wrong.extend(f"{module} imports {name}" for name in sorted(hits))
    assert not wrong, "\n".join(wrong)


def test_stages_are_leaves_that_only_the_round_loop_imports():
    stages = {m for m in MODULES if m.startswith("discovery.engine.stages.")}
    assert len(stages) == 8
    wrong = [
        f"{module} imports {target}"
        for module in MODULES
        if module != "discovery.engine.round_loop"
        for target in project_imports(module) & stages
    ]
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_of_discovery_share_a_name():
    by_name: dict[str, list[str]] = defaultdict(list)
    for module, path in MODULES.items():
        if module.startswith("discovery") and path.name != "__init__.py":
            by_name[path.stem].append(module)
    shared = {name: mods for name, mods in by_name.items() if len(mods) > 1}
    assert not shared


def test_a_module_with_a_problem_is_reported():
    """The checks can fail: an upward import written into a domain module is found."""
    module = "discovery.domain.convex_hull"
    saved = IMPORTS[module]
    IMPORTS[module] = saved | {"discovery.engine.context"}
    try:
        with pytest.raises(AssertionError, match="convex_hull .domain. imports"):
            test_each_layer_imports_only_itself_and_the_layers_below()
    finally:
        IMPORTS[module] = saved


@pytest.mark.parametrize("package", ["models", "simulators", "discovery"])
def test_generic_top_level_names_import_as_this_projects_packages(package):
    """`models` and `simulators` are generic names that another installed distribution could
    also claim; the installed metadata must name this distribution alone, and the import must
    resolve to this checkout."""
    owners = importlib.metadata.packages_distributions().get(package, [])
    assert set(owners) == {"crystal-discovery"}, f"{package} is also provided by {owners}"
    code = f"import {package}; print({package}.__file__); print({package}.__distribution__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True
    ).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(REPO)
    assert out[1] == "crystal-discovery"
