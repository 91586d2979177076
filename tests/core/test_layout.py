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
    "sae": {"data", "reporting", "distill"},
    "distill": {"data"},
    "probing": {"data", "reporting"},
    "toy": {"reporting"},
    "validate": {"toy", "reporting"},
    "survival": {"data", "reporting", "sae"},
    "apps": {"data", "reporting", "sae", "distill", "probing", "toy", "validate", "survival"},
}
DEFERRED_MARK = "Deferred"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group(module: str) -> str:
    if module == "hf_geokd":
        return "facade"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "core"


def package_imports(path: Path, package_root: Path = PACKAGE) -> list[tuple[str, bool, int]]:
    """(imported module of the package, at module level?, line) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text())
    own = module_name(path, package_root).split(".")
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
            if name and name.split(".")[0] == package_root.name:
                found.append((resolve(name, package_root), id(node) in top_level, node.lineno))
    return found


def resolve(name: str, package_root: Path = PACKAGE) -> str:
    """The module an imported name lives in ('hf_geokd.sae.load_sae' -> 'hf_geokd.sae')."""
    parts = name.split(".")
    while parts:
        candidate = package_root.parent.joinpath(*parts)
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


def import_graph(package_root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules that importing it may import: every import, inside functions included (a
    deferred import runs later, but it is still a dependency), and each imported module's enclosing packages (Python
    runs ``hf_geokd/sae/__init__.py`` before ``hf_geokd/sae/load.py``). The facade ``hf_geokd/__init__.py`` is left
    out: every module sits under it, and it only re-exports, lazily."""
    root = package_root.name
    graph: dict[str, set[str]] = {}
    for path in sorted(package_root.rglob("*.py")):
        source = module_name(path, package_root)
        targets = set()
        for target, _, _ in package_imports(path, package_root):
            parts = target.split(".")
            targets.update(".".join(parts[:end]) for end in range(2, len(parts) + 1))
        graph[source] = {t for t in targets if t not in (source, root) and not source.startswith(t + ".")}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path of modules (first == last), or None.

    A package's ``__init__`` importing its own submodules is not a circle (the submodule's edge to its enclosing
    package is dropped by :func:`import_graph`)."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                path = [*trail, node]
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt, [*trail, node])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_no_import_circle_among_modules_counting_imports_inside_functions():
    circle = find_circle(import_graph())
    assert circle is None, " -> ".join(circle)


def test_the_circle_check_finds_a_planted_deferred_circle(tmp_path):
    """A core module importing a subpackage inside a function, while the subpackage imports that core module at
    the top (the shape hf_geokd once had: predictor.from_sae <-> sae.hub), is a circle; without the deferred import,
    none."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("def build():\n    # Deferred: planted\n    from .sub.helper import help_\n")
    (package / "sub" / "__init__.py").write_text("from .card import card\n")
    (package / "sub" / "helper.py").write_text("def help_():\n    return 1\n")
    (package / "sub" / "card.py").write_text("from ..core import build\n\ndef card():\n    return build\n")
    circle = find_circle(import_graph(package))
    assert circle is not None and "pkg.core" in circle and "pkg.sub" in circle
    (package / "core.py").write_text("def build():\n    return 1\n")
    assert find_circle(import_graph(package)) is None


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
