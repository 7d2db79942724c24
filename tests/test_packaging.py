"""The packages users install: the sdist and the wheels must carry the tab's static files (its ES
modules and CSS, served as they are: there is no build step, and installing never runs Node)
and working entry points, since TensorBoard finds the plugin only through its entry point."""

from __future__ import annotations

import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATIC = "tensorboard_plugin_weightgates/static/"
NO_NODE = {**os.environ, "PATH": os.path.dirname(sys.executable)}
"""The environment of the builds: only the virtual environment's scripts on PATH, so no Node."""


def tracked_files(prefix: str = "") -> list[str]:
    """The files git tracks under `prefix`, as paths relative to the repository."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--", prefix or "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [path for path in listing.split("\0") if path and (ROOT / path).is_file()]


def build_wheel(source: pathlib.Path, out: pathlib.Path, env: dict[str, str]) -> zipfile.ZipFile:
    """Builds the wheel of `source` (a source tree or an sdist) as `pip install` does."""
    assert shutil.which("node", path=env["PATH"]) is None
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        env=env,
    )
    (path,) = out.glob("tensorboard_plugin_weightgates-*.whl")
    return zipfile.ZipFile(path)


def assert_ships_static_files(names: set[str], read) -> None:
    """`names` (paths in a package) hold every static file git tracks, each as it is in the
    working tree; `read(path)` gives a package member's bytes."""
    static = tracked_files(STATIC)
    assert STATIC + "index.js" in static
    assert set(static) <= names, sorted(set(static) - names)
    for path in static:
        assert read(path) == (ROOT / path).read_bytes(), path


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> pathlib.Path:
    """A clean checkout: the files git tracks, as in the working tree, and nothing else (no
    build/ or egg-info whose stale files setuptools would pack, no node_modules)."""
    checkout = tmp_path_factory.mktemp("checkout")
    for path in tracked_files():
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, checkout / path)
    return checkout


@pytest.fixture(scope="module")
def wheel(checkout, tmp_path_factory) -> zipfile.ZipFile:
    return build_wheel(checkout, tmp_path_factory.mktemp("wheel"), env=NO_NODE)


@pytest.fixture(scope="module")
def sdist(checkout, tmp_path_factory) -> tarfile.TarFile:
    """The sdist of the clean checkout, built by setuptools' PEP 517 backend as
    `python -m build --sdist` would."""
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-c", f"import setuptools.build_meta as b; b.build_sdist({str(out)!r})"],
        cwd=checkout,
        check=True,
        env=NO_NODE,
    )
    (path,) = out.glob("tensorboard*plugin*weightgates-*.tar.gz")
    return tarfile.open(path)


def sdist_members(sdist: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """The sdist's files by their path in the repository (without the top `name-version/`)."""
    return {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if m.isfile() and "/" in m.name}


def test_wheel_ships_every_static_file(wheel):
    assert_ships_static_files(set(wheel.namelist()), wheel.read)


def test_sdist_of_a_clean_checkout_ships_every_static_file(sdist):
    members = sdist_members(sdist)
    assert_ships_static_files(set(members), lambda path: sdist.extractfile(members[path]).read())


def test_wheel_built_from_the_sdist_ships_every_static_file(sdist, tmp_path):
    sdist_path = pathlib.Path(sdist.name)
    wheel = build_wheel(sdist_path, tmp_path, env=NO_NODE)
    assert_ships_static_files(set(wheel.namelist()), wheel.read)


def test_wheel_entry_points_name_modules_it_ships(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode("utf-8"))
    assert parser["tensorboard_plugins"]["weightgates"] == (
        "tensorboard_plugin_weightgates.backend.loader:WeightGatesLoader"
    )
    for target in [*parser["tensorboard_plugins"].values(), *parser["console_scripts"].values()]:
        module = target.split(":")[0].replace(".", "/") + ".py"
        assert module in wheel.namelist(), target
