"""Optional features: `pip install "stylegan[all]"` installs every one, and each "needs X" message names its extra."""
import re
import sys
from pathlib import Path

import pytest

from stylegan.cli.main import run

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")


def _extras():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_all_installs_every_optional_feature():
    extras = _extras()
    features = {name: deps for name, deps in extras.items() if name not in ("all", "test")}
    assert {"serve", "video", "export", "metrics", "demo"} <= set(features)
    assert sorted(extras["all"]) == sorted({dep for deps in features.values() for dep in deps})


def test_every_install_hint_names_an_existing_extra():
    extras = set(_extras())
    hints = []
    for path in (ROOT / "src" / "stylegan").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "pip install" in line and "triton" not in line:  # triton comes with PyTorch's CUDA wheels
                hints.append((path.name, line))
    assert len(hints) >= 6
    for name, line in hints:
        named = re.findall(r'stylegan\[(\w+)\]', line)
        assert named and set(named) <= extras, (name, line)


def test_serve_without_its_packages_says_which_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    assert run(["serve", "--network", str(tmp_path / "net.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "stylegan[serve]"' in err[0] and "stylegan[all]" in err[0]
