"""weightgates: per-gate weights and gradients of recurrent Keras layers, in TensorBoard.

TensorBoard imports this package (through the `loader` entry point) in processes that may not
have TensorFlow, so the Keras-facing names below are imported only when first used.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "WeightGatesCallback": "callback",
    "log_weights": "summary",
    "log_gradients": "summary",
    "split_layer": "gates",
    "split_model": "gates",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
