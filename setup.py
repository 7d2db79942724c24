"""Packaging for tensorboard-plugin-weightgates.

The built frontend (tensorboard_plugin_weightgates/static/) is committed and shipped as package
data, so installing the plugin never needs Node.
"""

import setuptools

setuptools.setup(
    name="tensorboard-plugin-weightgates",
    version="0.1.0",
    description="Per-gate weights and gradients of recurrent Keras layers, in TensorBoard",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=["tensorboard_plugin_weightgates"],
    package_data={"tensorboard_plugin_weightgates": ["static/*", "static/**/*"]},
    install_requires=[
        "tensorboard>=2.21",
        "numpy",
        "protobuf",
        "werkzeug",
    ],
    extras_require={"tensorflow": ["tensorflow>=2.21"]},
    entry_points={
        "tensorboard_plugins": [
            "weightgates = tensorboard_plugin_weightgates.loader:WeightGatesLoader",
        ],
        "console_scripts": [
            "weightgates = tensorboard_plugin_weightgates.cli:main",
        ],
    },
    classifiers=[
        "Framework :: TensorFlow",
        "Intended Audience :: Science/Research",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
