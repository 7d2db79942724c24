"""Logging from custom training loops: `log_weights` and `log_gradients`.

Each call finds (or makes) the `summary.GateLogger` of its model, writer and options, so update
sizes and the tags already described carry over from one call to the next, as in the callback.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from tensorboard_plugin_weightgates.format.options import LogOptions
from tensorboard_plugin_weightgates.keras_writer import gates
from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger

_loggers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _logger_for(model: Any, writer: tf.summary.SummaryWriter, **options: Any) -> GateLogger:
    """One logger per (model, writer, options), so update sizes carry over between calls."""
    layers = options.pop("layers", None)
    layers = None if layers is None else tuple(gates.check_layers(layers))
    per_model = _loggers.setdefault(model, {})
    key = (id(writer), layers, tuple(sorted(options.items())))
    if key not in per_model:
        per_model[key] = GateLogger(model, writer, layers=layers, options=LogOptions(**options))
    return per_model[key]


def log_weights(
    model: Any,
    step: int,
    writer: tf.summary.SummaryWriter,
    snapshot: bool = True,
    **options: Any,
) -> None:
    """Logs every gate of `model`'s weights at `step`, for custom training loops.

    Args:
      model: a built Keras model (Keras 3 or tf-keras).
      step: the global step (for example `optimizer.iterations`).
      writer: a `tf.summary` writer, e.g. `tf.summary.create_file_writer("logs/run1/train")`;
        it flushes on its own schedule, or call `writer.flush()`.
      snapshot: also write the values, block-reduced, for the heatmaps (pass
        ``snapshot=step % 100 == 0`` to keep them rarer than the statistics).
      **options: `layers`, and the fields of `LogOptions` (`histogram_bins`, `near_zero`,
        `gradient_near_zero`, `snapshot_max_cells`, `write_histograms`).

    Example:
    ```python
    writer = tf.summary.create_file_writer("logs/run1/train")
    for step, (x, y) in enumerate(dataset):
        ...  # your training step
        if step % 10 == 0:
            log_weights(model, step, writer, snapshot=step % 100 == 0)
    ```
    """
    _logger_for(model, writer, **options).log_weights(int(step), snapshot_values=snapshot)


def log_gradients(
    model: Any,
    grads_and_vars: Iterable[tuple[Any, Any]],
    step: int,
    writer: tf.summary.SummaryWriter,
    snapshot: bool = True,
    **options: Any,
) -> None:
    """Logs (gradient, variable) pairs from any training loop, split per gate like the weights.

    Variables must be `model`'s own variable objects (as in `model.trainable_variables`);
    pairs of other variables are ignored. `snapshot` (True by default, as for `log_weights`)
    also writes the gradients, block-reduced, for the heatmaps; other arguments are those of
    `log_weights`.

    Example:
    ```python
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    pairs = list(zip(grads, model.trainable_variables))
    optimizer.apply_gradients(pairs)
    log_gradients(model, pairs, step, writer)
    ```
    """
    logger = _logger_for(model, writer, **options)
    logger.log_gradients(logger.gradient_pairs(grads_and_vars), int(step), snapshot_values=snapshot)
