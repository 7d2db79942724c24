"""Runs pytest against another Keras 3 release, beside the one TensorFlow installed.

    python tests/with_keras.py 3.12.0 tests/test_compat.py ...
    python tests/with_keras.py newest tests/test_compat.py ...

The release is installed once, without its dependencies (TensorFlow's own serve it), into
``.venv/keras-<version>``, and put first on ``PYTHONPATH``, so that both ``import keras`` and
``tf.keras`` load it: no second TensorFlow is needed. ``newest`` asks the package index for the
newest release and runs nothing when that is the one installed (the main suite tests it).
The run fails unless the tests saw the version asked for.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

VENV = pathlib.Path(sys.prefix)


def newest_release() -> str:
    """The newest Keras release on the package index pip is configured with."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "keras"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^keras \(([^)]+)\)", listing, re.MULTILINE)
    if not match:
        raise SystemExit(f"with_keras: cannot read the newest keras from pip:\n{listing}")
    return match.group(1)


def installed_release(pythonpath: str | None = None) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    script = (
        "import json, keras, tensorflow as tf; "
        "print(json.dumps([keras.__version__, tf.keras.__name__, tf.keras.__file__]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    version, _, path = json.loads(out.strip().splitlines()[-1])
    if pythonpath and not str(path).startswith(pythonpath):
        raise SystemExit(f"with_keras: tf.keras loads {path}, not the Keras in {pythonpath}")
    return version


def install(version: str) -> pathlib.Path:
    target = VENV / f"keras-{version}"
    if not (target / "keras").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"keras=={version}",
            ],
            check=True,
        )
    return target


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit("usage: python tests/with_keras.py VERSION|newest PYTEST_ARGS...")
    version, pytest_args = argv[0], argv[1:]
    if version == "newest":
        version = newest_release()
        if version == installed_release():
            print(f"with_keras: the newest Keras, {version}, is the suite's own; tested there")
            return 0
    target = install(version)
    seen = installed_release(str(target))
    if seen != version:
        raise SystemExit(f"with_keras: asked for Keras {version}, the tests would see {seen}")
    print(f"with_keras: running {' '.join(pytest_args)} against Keras {version}", flush=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run([sys.executable, "-m", "pytest", *pytest_args], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
