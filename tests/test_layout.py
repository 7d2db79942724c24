"""The import contract of the package's folders (docs/architecture.md): data flows one way.

`format` is shared and framework-free; `keras_writer` (needs TensorFlow) and `backend` (never
imports it: TensorBoard may run without it) build on `format` and never on each other; `cli`
sits on top. Checked on the source (every import statement, also inside functions) and by
importing the TensorFlow-free folders in a process where TensorFlow cannot be imported.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

PACKAGE = "tensorboard_plugin_weightgates"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE
FRAMEWORKS = ("tensorflow", "keras", "tf_keras")

ALLOWED = {
    "format": {"format"},
    "keras_writer": {"format", "keras_writer"},
    "backend": {"format", "backend"},
    "cli": {"format", "keras_writer", "backend", "cli"},
}
"""Which of the package's folders each folder may import."""

WITHOUT_FRAMEWORK = ("format", "backend")


def imports(path: pathlib.Path) -> list[str]:
    """Every module name an import statement of `path` names (absolute, as written)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; name the folder it comes from"
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def folder_sources(folder: str) -> list[pathlib.Path]:
    sources = sorted((ROOT / folder).glob("*.py"))
    assert sources, f"no modules in {folder}/"
    return sources


def test_every_module_lives_in_a_known_folder():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    folders = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())

    assert top == ["__init__.py"]
    assert folders == sorted(ALLOWED)


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_folders_import_only_the_folders_below_them(folder):
    for path in folder_sources(folder):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != PACKAGE or len(parts) < 2 or parts[1] not in ALLOWED:
                continue
            assert parts[1] in ALLOWED[folder], f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("folder", WITHOUT_FRAMEWORK)
def test_framework_free_folders_never_import_a_framework(folder):
    for path in folder_sources(folder):
        for name in imports(path):
            assert name.split(".")[0] not in FRAMEWORKS, f"{path.relative_to(ROOT)} imports {name}"


def test_package_root_imports_no_folder_until_asked():
    names = imports(ROOT / "__init__.py")

    assert all(not name.startswith(f"{PACKAGE}.") for name in names), names


def test_framework_free_modules_import_without_tensorflow():
    modules = [
        f"{PACKAGE}.{folder}.{path.stem}"
        for folder in (*WITHOUT_FRAMEWORK, "cli")
        for path in folder_sources(folder)
        if path.stem not in ("__init__", "importer")
    ]
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {FRAMEWORKS!r}:
            sys.modules[name] = None
        for module in {modules!r}:
            importlib.import_module(module)
        from {PACKAGE}.cli import main
        main.build_parser()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
