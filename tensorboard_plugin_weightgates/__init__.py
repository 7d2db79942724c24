"""weightgates: per-gate weights and gradients of recurrent Keras layers, in TensorBoard.

TensorBoard imports this package (through the `backend.loader` entry point) in processes that
may not have TensorFlow, so the Keras-facing names below are imported only when first used.
The folders: `format` (what is written, shared), `keras_writer` (Keras to event files),
`backend` (TensorBoard's data to the tab's routes), `cli` (the `weightgates` command), `static`
(the tab's ES modules); docs/architecture.md walks through them.
"""

import importlib

__version__ = "0.2.0.dev0"
"""The release; setup.py reads it from here, the one place it is written."""

_LAZY = {
    "WeightGatesCallback": "keras_writer.callback",
    "log_weights": "keras_writer.custom_loop",
    "log_gradients": "keras_writer.custom_loop",
    "split_layer": "keras_writer.gates",
    "split_model": "keras_writer.gates",
    "gate_activations": "keras_writer.activations",
    "log_activations": "keras_writer.activations",
}

_LAZY_MODULES = {"activations": "keras_writer.activations"}
"""Modules reachable as attributes of the package: ``tensorboard_plugin_weightgates.activations``
is `keras_writer.activations`, imported when first used."""

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{_LAZY_MODULES[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
