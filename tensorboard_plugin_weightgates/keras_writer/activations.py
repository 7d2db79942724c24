"""What recurrent layers compute inside their gates: `gate_activations` for one layer and
input, `log_activations` for custom training loops.

Also reachable as ``tensorboard_plugin_weightgates.activations``. The values are recomputed
from the layer's gate slices (`recurrence`), so fused cuDNN kernels are no obstacle, and checked
against the layer's own output before they are returned.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format.options import LogOptions
from tensorboard_plugin_weightgates.keras_writer import gates, recurrence
from tensorboard_plugin_weightgates.keras_writer.activation_logger import (
    ActivationLogger,
    check_activation_sample,
)


def gate_activations(
    layer: Any, inputs: Any, mask: Any = None, initial_state: Any = None
) -> dict[tuple[str, int | None, str], np.ndarray]:
    """The gate activations and states a recurrent layer computes on `inputs`, per timestep.

    Args:
      layer: an ``LSTM``, ``GRU``, ``SimpleRNN``, ``ConvLSTM1D/2D/3D``, ``RNN`` of such cells
        (``StackedRNNCells`` too) or a ``Bidirectional`` of one (Keras 3 or tf-keras). It is
        built on `inputs` if it is not built yet.
      inputs: ``[batch, time, features]`` (ConvLSTM ``[batch, time, *spatial, channels]``).
      mask: bool ``[batch, time]``, False at the steps the layer skips, or None.
      initial_state: the layer's initial states, as its ``initial_state`` argument takes them
        (for ``Bidirectional``, the forward states then the backward ones), or None for zeros.

    Returns:
      ``{(direction, cell, name): values}``: `direction` ``"forward"`` or ``"backward"``,
      `cell` the index in ``StackedRNNCells`` (else None), `name` a gate of the cell after its
      nonlinearity (``input``, ``forget``, ``cell``, ``output`` for LSTM and ConvLSTM;
      ``update``, ``reset``, ``candidate`` for GRU), ``"cell_state"`` (LSTM, ConvLSTM) or
      ``"hidden_state"``. Values are NumPy ``[batch, time, units]`` (ConvLSTM ``[batch, time,
      *spatial, filters]``) in float32 (float64 for float64 weights), computed in inference
      mode, indexed by input timestep in every direction, NaN at masked steps.

    Raises:
      ValueError: `layer` is not a supported recurrent layer (`recurrence.UnsupportedLayer`), or
        the recomputed hidden states differ from the layer's own output
        (`recurrence.RecomputationMismatch`: a custom cell that changes the equations).

    Example:
    ```python
    layer = keras.layers.LSTM(16, return_sequences=True)
    values = gate_activations(layer, x)
    forget = values[("forward", None, "forget")]  # [batch, time, 16], in (0, 1)
    ```
    """
    inputs = tf.convert_to_tensor(inputs)
    if initial_state is not None:
        initial_state = tf.nest.map_structure(
            tf.convert_to_tensor, list(tf.nest.flatten(initial_state))
        )
    if not layer.built:
        layer(inputs)
    if not recurrence.is_recurrent(layer):
        raise recurrence.UnsupportedLayer(
            f"{type(layer).__name__} {layer.name!r} is not a recurrent layer"
        )
    described = recurrence.describe(layer, gates.split_layer(layer))
    if described is None:
        raise recurrence.UnsupportedLayer(f"layer {layer.name!r} has no recurrent kernels")
    states = _initial_states(described, initial_state)
    mask = None if mask is None else tf.convert_to_tensor(mask, tf.bool)
    recomputed = recurrence.run(described, inputs, mask, states)
    call_kwargs: dict[str, Any] = {"training": False}
    if mask is not None:
        call_kwargs["mask"] = mask
    if initial_state is not None:
        call_kwargs["initial_state"] = initial_state
    own = tf.nest.flatten(layer(inputs, **call_kwargs))
    error = float(recurrence.output_error(own, recomputed))
    limit = recurrence.tolerance(own)
    if not error <= limit:
        raise recurrence.RecomputationMismatch(
            f"the recomputed hidden states of layer {layer.name!r} differ from its output by "
            f"{error:.3g} (tolerance {limit:g}): its cells do not follow Keras' equations"
        )
    return {
        (run.cell.identity.direction, run.cell.identity.cell, name): np.asarray(values)
        for run in recomputed.cells
        for name, values in run.values.items()
    }


def _initial_states(described: recurrence.RecurrentLayer, initial_state: Any) -> list:
    if initial_state is None:
        return [None] * len(described.directions)
    flat = list(initial_state)
    if described.bidirectional:
        half = len(flat) // 2
        return [flat[:half], flat[half:]]
    return [flat]


_loggers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def log_activations(
    model: Any,
    x: Any,
    step: int,
    writer: tf.summary.SummaryWriter,
    y: Any = None,
    sample_weight: Any = None,
    loss: Callable[..., Any] | None = None,
    snapshot: bool = True,
    activation_sample: int = 0,
    **options: Any,
) -> None:
    """Logs the gate activations of `model`'s recurrent layers on the probe batch `x` at
    `step`, for custom training loops (what ``WeightGatesCallback(activations=...)`` logs).

    Per direction and cell of every LSTM, GRU, SimpleRNN, ConvLSTM, ``RNN(cell)`` and
    ``StackedRNNCells`` (also inside ``Bidirectional`` and nested models): per gate, cell state
    and hidden state, the saturation fractions and mean of every unit and a histogram; with `y`,
    the norm of dL/dh_t per timestep; with `snapshot`, unit x timestep maps of sample
    `activation_sample`. Pass the same probe at every call: its timesteps fix the records'
    layout.

    Args:
      model: a built Keras model (Keras 3 or tf-keras).
      x: the probe inputs, ``[batch, time, ...]`` (a list or dict for several inputs).
      step: the global step.
      writer: a `tf.summary` writer, e.g. ``tf.summary.create_file_writer("logs/run1/train")``.
      y, sample_weight: targets (and weights) of the probe, for gradients through time.
      loss: ``loss(y_true, y_pred)`` for those gradients; None for the model's compiled loss.
      snapshot: also write the maps of one sample.
      activation_sample: which sample of `x` the maps show.
      **options: `layers`, ``histogram_bins``, ``snapshot_max_cells``, ``write_histograms``.

    Raises:
      ValueError: `y` without a `loss` for a model that is not compiled, a bad option, or an
        `activation_sample` outside the probe batch.

    Example:
    ```python
    writer = tf.summary.create_file_writer("logs/run1/train")
    for step, (x, y) in enumerate(dataset):
        ...  # your training step
        if step % 100 == 0:
            log_activations(model, x_probe, step, writer, y=y_probe, loss=loss_fn)
    ```
    """
    probe = (tf.nest.map_structure(tf.convert_to_tensor, x), None, None)
    sample = check_activation_sample(activation_sample, probe)
    if y is not None and loss is None and not getattr(model, "loss", None):
        raise ValueError(
            "log_activations: y is given but the model is not compiled with a loss; pass loss= "
            "(for example keras.losses.MeanSquaredError()) for gradients through time"
        )
    logger = _logger_for(model, writer, sample, loss, options)
    logger.log(int(step), probe[0], y, sample_weight, statistics=True, maps=snapshot)


def _logger_for(
    model: Any, writer: Any, sample: int, loss: Any, options: Mapping[str, Any]
) -> ActivationLogger:
    """One logger per (model, writer, sample, loss, options): its traced pass and described tags
    carry over from one call to the next."""
    options = dict(options)
    layers = options.pop("layers", None)
    layers = None if layers is None else tuple(gates.check_layers(layers))
    per_model = _loggers.setdefault(model, {})
    key = (id(writer), sample, id(loss), layers, tuple(sorted(options.items())))
    if key not in per_model:
        per_model[key] = ActivationLogger(
            model, writer, layers=layers, options=LogOptions(**options), sample=sample, loss=loss
        )
    return per_model[key]
