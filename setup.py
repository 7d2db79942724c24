"""Packaging for tensorboard-plugin-weightgates.

The tab's ES modules (tensorboard_plugin_weightgates/static/) are hand-written and shipped as
package data as they are, so installing the plugin never needs Node. The version is read from
the package's `__version__`, its one place.
"""

import pathlib
import re

import setuptools

ROOT = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (ROOT / "tensorboard_plugin_weightgates" / "__init__.py").read_text(encoding="utf-8"),
    re.MULTILINE,
).group(1)

setuptools.setup(
    name="tensorboard-plugin-weightgates",
    version=VERSION,
    description="Per-gate weights and gradients of recurrent Keras layers, in TensorBoard",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.9",
    packages=setuptools.find_packages(include=["tensorboard_plugin_weightgates*"]),
    package_data={"tensorboard_plugin_weightgates": ["static/*", "static/**/*"]},
    install_requires=[
        "tensorboard>=2.21",
        "numpy",
        "protobuf",
        "werkzeug",
    ],
    # The releases `make test` runs against: TensorFlow 2.21 with Keras 3.12 (the oldest it
    # accepts) to the newest Keras 3, and tf-keras 2.21 (tests/with_keras.py).
    extras_require={"tensorflow": ["tensorflow>=2.21,<2.22", "keras>=3.12,<3.16"]},
    entry_points={
        "tensorboard_plugins": [
            "weightgates = tensorboard_plugin_weightgates.backend.loader:WeightGatesLoader",
        ],
        "console_scripts": [
            "weightgates = tensorboard_plugin_weightgates.cli.main:main",
        ],
    },
    classifiers=[
        "Framework :: TensorFlow",
        "Intended Audience :: Science/Research",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
