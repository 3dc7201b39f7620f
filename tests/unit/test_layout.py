"""The root folders collectors/, symbolize/ and web/ are the packages hwprof.collectors, hwprof.symbolize and
hwprof.web through setuptools' package-dir mapping. These tests guard the mapping where it can break: the
editable install, the `packages` list (a new sub-package left out installs nothing), and a real wheel."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAPPED = {"hwprof.collectors": "collectors", "hwprof.symbolize": "symbolize", "hwprof.web": "web"}
SOURCE_ROOTS = {"hwprof": "hwprof", **MAPPED}


def _setuptools_config() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def _source_packages() -> dict[str, Path]:
    """Every folder with an __init__.py under the mapped roots, by the dotted name it installs as."""
    out = {}
    for package, folder in SOURCE_ROOTS.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root)
            if "__pycache__" in relative.parts:
                continue
            parts = [] if str(relative) == "." else list(relative.parts)
            dotted = ".".join([package, *parts])
            if package == "hwprof" and parts and parts[0] in MAPPED.values():
                continue  # never: the mapped folders live at the root, not inside hwprof/
            out[dotted] = init.parent
    return out


def test_editable_install_imports_the_root_folders():
    for name, folder in MAPPED.items():
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().parent == REPO / folder, name


def test_package_dir_maps_the_root_folders():
    config = _setuptools_config()
    assert config["package-dir"] == {"hwprof": "hwprof", **MAPPED}
    for folder in MAPPED.values():
        assert not (REPO / "hwprof" / folder).exists(), f"hwprof/{folder} would shadow the mapped root folder"


def test_every_source_package_is_listed():
    listed = set(_setuptools_config()["packages"])
    missing = sorted(set(_source_packages()) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tree (the repo stays untouched) and installed with --target."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in ("pyproject.toml", "README.md", *SOURCE_ROOTS.values()):
        path = REPO / item
        if path.is_dir():
            shutil.copytree(path, source / item, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, source / item)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and ("Could not find a version" in build.stderr or "connection" in build.stderr.lower()):
        pytest.skip("building a wheel needs setuptools from the package index, which is unreachable")
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((work / "dist").glob("hwprof-*.whl"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    (work / "wheel-path").write_text(str(wheel))
    return target


def test_wheel_contains_every_module_and_the_web_assets(installed):
    wheel = Path((installed.parent / "wheel-path").read_text())
    names = set(zipfile.ZipFile(wheel).namelist())
    for dotted, folder in _source_packages().items():
        for module in folder.glob("*.py"):
            member = "/".join(dotted.split(".")) + "/" + module.name
            assert member in names, f"{member} is missing from the wheel"
    for asset_dir in ("static", "templates"):
        for asset in (REPO / "web" / asset_dir).glob("*") if (REPO / "web" / asset_dir).is_dir() else ():
            if asset.is_file():
                assert f"hwprof/web/{asset_dir}/{asset.name}" in names


def test_wheel_imports_from_the_installed_package(installed):
    """Run from a neutral directory with the install first on sys.path: every module must import from there."""
    script = f"""
import importlib, pkgutil, sys
sys.path.insert(0, {str(installed)!r})
import hwprof
assert hwprof.__file__.startswith({str(installed)!r}), hwprof.__file__
for name in {sorted(MAPPED)!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({str(installed)!r} + "/hwprof/" + name.split(".")[1]), module.__file__
for info in pkgutil.walk_packages(hwprof.__path__, "hwprof."):
    if info.name.endswith("__main__"):
        continue  # runs the CLI when imported
    module = importlib.import_module(info.name)
    assert module.__file__.startswith({str(installed)!r}), (info.name, module.__file__)
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/", env=env,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
    cli = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(installed)!r}); "
                          "from hwprof.cli import main; sys.exit(main(['list', 'sw', '--no-probe']))"],
                         capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert cli.returncode == 0 and "task-clock" in cli.stdout, cli.stderr
