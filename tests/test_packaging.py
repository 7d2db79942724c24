"""The wheel users install: it must carry the built frontend and working entry points, since
`pip install` never runs Node and TensorBoard finds the plugin only through its entry point."""

from __future__ import annotations

import configparser
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
    )
    (path,) = out.glob("tensorboard_plugin_weightgates-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_every_built_frontend_file(wheel):
    names = set(wheel.namelist())
    static = ROOT / "tensorboard_plugin_weightgates" / "static"
    built = {f"tensorboard_plugin_weightgates/static/{p.name}" for p in static.iterdir()}
    assert "tensorboard_plugin_weightgates/static/index.js" in built
    assert built <= names


def test_wheel_entry_points_name_modules_it_ships(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode("utf-8"))
    assert parser["tensorboard_plugins"]["weightgates"] == (
        "tensorboard_plugin_weightgates.loader:WeightGatesLoader"
    )
    for target in [*parser["tensorboard_plugins"].values(), *parser["console_scripts"].values()]:
        module = target.split(":")[0].replace(".", "/") + ".py"
        assert module in wheel.namelist(), target
