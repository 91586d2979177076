"""The package's import rule, checked on its source: layers, no circles, no hidden imports of the package itself."""

import ast
import subprocess
import sys
from pathlib import Path

import hf_geokd

PACKAGE = Path(hf_geokd.__file__).parent
# Each group may import the core and the groups listed for it (module-level imports); "core" is the top level.
ALLOWED = {
    # hf_geokd/__init__.py, lazily
    "facade": {"data", "reporting", "sae", "distill", "probing", "toy", "validate", "survival", "apps"},
    "core": set(),
    "data": set(),
    "reporting": set(),
    "sae": {"data", "reporting"},
    "distill": {"data"},
    "probing": {"data"},
    "toy": {"reporting"},
    "validate": {"toy", "reporting"},
    "survival": {"data", "reporting", "sae"},
    "apps": {"data", "reporting", "sae", "distill", "probing", "toy", "validate", "survival"},
}
DEFERRED_MARK = "Deferred"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group(module: str) -> str:
    if module == "hf_geokd":
        return "facade"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "core"


def package_imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported hf_geokd module, at module level?, line) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text())
    own = module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks only inform type checkers
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            top_level.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else [])) if node.level else node.module
            names = [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name and name.split(".")[0] == "hf_geokd":
                found.append((resolve(name), id(node) in top_level, node.lineno))
    return found


def resolve(name: str) -> str:
    """The module an imported name lives in ('hf_geokd.sae.load_sae' -> 'hf_geokd.sae')."""
    parts = name.split(".")
    while parts:
        candidate = PACKAGE.parent.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_imports_only_what_its_layer_allows():
    violations = []
    for path in sources():
        source_group = group(module_name(path))
        for target, top, line in package_imports(path):
            target_group = group(target)
            if not top or target_group in ("core", source_group):
                continue
            if target_group not in ALLOWED[source_group]:
                violations.append(f"{path.relative_to(PACKAGE)}:{line} ({source_group}) imports {target}")
    assert not violations, "\n".join(violations)


def test_no_import_circle_among_modules():
    graph = {module_name(path): {t for t, top, _ in package_imports(path) if top and t != module_name(path)}
             for path in sources()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1 and not (trail[-1:] and nxt.startswith(node + ".")):
                if not (node.startswith(nxt + ".") or nxt == "hf_geokd"):  # a package's __init__ re-exporting
                    raise AssertionError(" -> ".join([*trail, node, nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_imports_of_the_package_inside_functions_say_why():
    unexplained = []
    for path in sources():
        lines = path.read_text().splitlines()
        for target, top, line in package_imports(path):
            if top:
                continue
            before = "\n".join(lines[max(0, line - 4) : line])
            if DEFERRED_MARK not in before:
                unexplained.append(f"{path.relative_to(PACKAGE)}:{line} imports {target} inside a function")
    assert not unexplained, "\n".join(unexplained)


def test_the_core_imports_no_heavy_dependency():
    code = ("import sys, hf_geokd; from hf_geokd import FloorPredictor, capacity, fit_power_law, FeatureStats; "
            "import hf_geokd.paper, hf_geokd.cards, hf_geokd.tables; "
            "print(sorted(m for m in ('sae_lens', 'transformers', 'matplotlib', 'datasets', 'accelerate') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_public_name_imports_from_the_package():
    for name in hf_geokd.__all__:
        assert getattr(hf_geokd, name) is not None, name
