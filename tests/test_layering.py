"""The package's layers read one way, bottom to top (STYLE.md): no module imports from a layer above its own."""
import ast
from pathlib import Path

import stylegan

LAYERS = ("ops", "networks", "io", "data", "metrics", "runtime", "training", "tools", "serve", "cli")
# Modules outside the layer folders: errors is imported by every layer; presets (typed training configs and their
# networks) sits with training; the package's front door (__init__, __main__) may import anything.
PLACED = {"errors": -1, "presets": LAYERS.index("training"), "__init__": LAYERS.index("cli")}
ROOT = Path(stylegan.__file__).parent


def _layer(parts) -> int:
    head = parts[0]
    if not (ROOT / head).is_dir() and not (ROOT / f"{head}.py").is_file():
        head = "__init__"  # a name the package's front door defines (`from .. import load_generator`)
    if head in LAYERS:
        return LAYERS.index(head)
    return PLACED.get(head.removesuffix(".py"), len(LAYERS))


def _imported(source: str, package: tuple):
    """(line, module path inside the package as parts) of each import of another stylegan module in `source`, a
    module of the subpackage `package` (parts below stylegan)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + tuple(node.module.split(".")) if node.module else base
            elif node.module and node.module.split(".")[0] == "stylegan":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            if not target:  # from . import x / from .. import x: the names are the modules
                yield from ((node.lineno, base + (a.name,)) for a in node.names)
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "stylegan" and len(alias.name.split(".")) > 1:
                    yield node.lineno, tuple(alias.name.split(".")[1:])


def _violations(source: str, parts: tuple):
    """The imports of module `parts` (path parts below stylegan/) that reach a higher layer."""
    own = _layer(parts)
    return [f"{'/'.join(parts)}:{line} imports {'.'.join(target)}" for line, target in _imported(source, parts[:-1])
            if target and _layer(target) > own]


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if len(parts) == 1 and parts[0] in ("__init__.py", "__main__.py"):
            continue
        violations += _violations(path.read_text(), parts)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_the_check_sees_upward_imports_of_every_form():
    source = ("from ..tools.images import save_image\nfrom .. import serve, load_network\n"
              "import stylegan.runtime.path\nfrom stylegan.training import loop\nfrom ..ops.misc import assert_shape\n")
    found = _violations(source, ("networks", "x.py"))
    assert [line.split(" imports ")[1] for line in found] == ["tools.images", "serve", "load_network",
                                                             "runtime.path", "training"]
    assert _violations("from ...cli import main\n", ("ops", "sub", "x.py")) == ["ops/sub/x.py:1 imports cli"]
    assert _violations("from ..ops import misc\nfrom . import layers\n", ("networks", "x.py")) == []
