"""`ActivationLogger`: one probe pass per logged step gives every recurrent layer's gate
activations, states and gradients through time, checked and written as activation records.

The pass is one compiled function per set of layers and record types: it calls the model on
the probe batch in inference mode with each logged recurrent layer's ``call`` intercepted
(`compat.calls_intercepted`), so that the layer's input sequence, mask and initial states are
captured wherever the layer sits (Sequential, functional, subclassed and nested models). The
layer still runs as it is (cuDNN included) and gives the values the rest of the model sees; the
layer is also recomputed from its gate slices (`recurrence`), and the two are compared. With a
target, the recomputation carries the gradient: each layer's output is the layer's own value
with the recomputation's gradient (a straight-through sum), so one backward pass from the loss
gives ``dL/dh_t`` of every layer, through every later step, and Keras' own backward pass is not
run at all. Statistics are reduced on the device (`activation_stats`); the host gets a few
numbers per unit and timestep, and the maps of one sample at snapshot steps.

A layer whose recomputed outputs differ from its own (`recurrence.TOLERANCE`) is never logged:
one warning names it, it is left out from then on, and the pass is run again without it, so
that no gradient flows through a recomputation that is not the layer's.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata, snapshot
from tensorboard_plugin_weightgates.format.options import LogOptions
from tensorboard_plugin_weightgates.keras_writer import activation_stats, compat, recurrence

Loss = Callable[..., Any]
"""``loss(y_true, y_pred)`` (or with ``sample_weight=``): a Keras loss or any function whose
mean is the loss."""


def check_activation_probe(activations: Any, gradients: Any) -> tuple | None:
    """The callback's `activations=` as tensors ``(x, y, sample_weight)`` (y and sample_weight
    None when not given), or None when off.

    `activations` is None or False (off), True (the probe batch of `gradients`), inputs `x` (an
    array, a tensor, a list or dict of them for several inputs), or a tuple ``(x, y)`` or ``(x,
    y, sample_weight)`` (as Keras reads ``validation_data``).

    Raises:
      ValueError: naming `activations=`, the value and what is allowed.
    """
    if activations is None or activations is False:
        return None
    if activations is True:
        if not isinstance(gradients, tuple):
            raise ValueError(
                "activations=True reuses the probe batch of gradients=, but gradients is "
                f"{gradients!r}; pass activations=x, (x, y) or (x, y, sample_weight) instead"
            )
        activations = gradients
    if isinstance(activations, tuple):
        if len(activations) not in (2, 3):
            raise ValueError(
                "activations must be None, True, inputs x, or a tuple (x, y) or "
                f"(x, y, sample_weight), got a tuple of length {len(activations)}"
            )
        batch = tuple(activations) + (None,) * (3 - len(activations))
    elif isinstance(activations, (str, bytes)):
        raise ValueError(
            "activations must be None, True, inputs x, or a tuple (x, y) or "
            f"(x, y, sample_weight), got {activations!r}"
        )
    else:
        batch = (activations, None, None)
    try:
        converted = tuple(
            None if part is None else tf.nest.map_structure(tf.convert_to_tensor, part)
            for part in batch
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"activations: the probe batch cannot be made tensors: {error}") from None
    first = tf.nest.flatten(converted[0])
    if not first or first[0].shape.rank is None or first[0].shape.rank < 2:
        raise ValueError(
            "activations: the probe inputs x must be [batch, time, ...] (at least 2 axes)"
        )
    if first[0].shape[0] == 0:
        raise ValueError("activations: the probe batch x must hold at least one sample")
    return converted


def check_activation_sample(sample: Any, probe: tuple | None) -> int:
    """`activation_sample` as an index into the probe batch.

    Raises:
      ValueError: not an integer from 0 to the probe batch's size - 1.
    """
    size = None if probe is None else tf.nest.flatten(probe[0])[0].shape[0]
    upper = "" if size is None else f" to {size - 1}"
    if (
        isinstance(sample, bool)
        or not isinstance(sample, (int, np.integer))
        or sample < 0
        or (size is not None and sample >= size)
    ):
        raise ValueError(
            f"activation_sample must be an integer from 0{upper} (a sample of the probe batch "
            f"for the maps), got {sample!r}"
        )
    return int(sample)


@dataclasses.dataclass(frozen=True)
class _Pass:
    """A compiled probe pass: which layers it recomputes and what it returns."""

    function: Any
    layers: tuple[recurrence.RecurrentLayer, ...]


class ActivationLogger:
    """Writes the activation records of one model's recurrent layers to one summary writer.

    Args:
      model: a built Keras model, held weakly.
      writer: a `tf.summary` writer (the callback's, or a custom loop's).
      layers: as `gates.split_model`'s ``layers=``.
      options: histogram bins, snapshot bound and whether to write TensorBoard histograms.
      sample: the probe sample whose maps are written.
      loss: how the loss of a target is computed: None for the model's compiled loss
        (``model.compute_loss``), or a `Loss`.
    """

    def __init__(
        self,
        model: Any,
        writer: tf.summary.SummaryWriter,
        layers: Sequence[Any] | None = None,
        options: LogOptions | None = None,
        sample: int = 0,
        loss: Loss | None = None,
    ):
        self._model = weakref.ref(model)
        self.writer = writer
        self.options = options or LogOptions()
        self.sample = sample
        self.loss = loss
        self.layers, unsupported = recurrence.find_layers(model, layers)
        for path, reason in unsupported.items():
            warnings.warn(
                f"weightgates: the activations of layer {path!r} are not logged: {reason}",
                stacklevel=3,
            )
        self._excluded: set[str] = set()
        self._failed = False
        self._passes: dict[tuple, _Pass] = {}
        self._described: set[str] = set()
        self._shapes: dict[str, tuple[int, ...]] = {}

    @property
    def model(self) -> Any:
        return self._model()

    @property
    def active_layers(self) -> list[recurrence.RecurrentLayer]:
        """The layers still logged: those whose recomputation has never failed its check."""
        return [r for r in self.layers if r.path not in self._excluded]

    def log(
        self,
        step: int,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        statistics: bool = True,
        maps: bool = False,
        gradients: bool = True,
    ) -> None:
        """Runs the probe pass on `x` and writes, at `step`, the statistics (and, with `y` and
        `gradients`, the gradient norms) and/or the maps of every active layer. A failure is a
        warning, after which this logger logs nothing more."""
        gradients = gradients and y is not None
        if self._failed or not (statistics or maps) or not self.active_layers:
            return
        try:
            self._log(step, x, y, sample_weight, statistics, maps, gradients)
        except Exception as error:  # A logging failure must never stop training.
            self._failed = True
            warnings.warn(
                f"weightgates: logging activations failed at step {step} ({error!r}); no more "
                "activations are logged for this model",
                stacklevel=3,
            )

    def _log(self, step, x, y, sample_weight, statistics: bool, maps: bool, gradients: bool):
        results = self._run(x, y, sample_weight, gradients, maps)
        if results is None:
            return
        with self.writer.as_default(), tf.summary.record_if(True):
            for recurrent in self.active_layers:
                for cell, result in zip(recurrent.cells, results.get(recurrent.path, ())):
                    info = self._info(recurrent, cell, result)
                    if statistics:
                        self._write_statistics(info, result, step)
                    if maps:
                        self._write_maps(info, result, step)

    def _run(self, x, y, sample_weight, gradients: bool, maps: bool) -> dict | None:
        """The pass's results by layer path, after leaving out (and warning about) the layers
        whose check fails; None when none is left."""
        while True:
            layers = tuple(self.active_layers)
            if not layers:
                return None
            probe = self._pass(layers, gradients, maps)
            with compat.loss_metrics_paused(self.model):
                raw = probe.function(*_arguments(x, y, sample_weight))
            results = {path: [_numpy(c) for c in cells] for path, cells in raw["cells"].items()}
            failed = []
            for recurrent in layers:
                if recurrent.path not in raw["errors"]:
                    continue
                error = float(raw["errors"][recurrent.path])
                limit = float(raw["tolerances"][recurrent.path])
                if not error <= limit:
                    failed.append(recurrent.path)
                    warnings.warn(
                        f"weightgates: the recomputed hidden states of layer "
                        f"{recurrent.path!r} differ from its own output by {error:.3g} "
                        f"(tolerance {limit:g}); its activations are not logged",
                        stacklevel=4,
                    )
            if not failed:
                return results
            self._excluded.update(failed)
            if not gradients:
                return {p: r for p, r in results.items() if p not in self._excluded}

    def _pass(self, layers: tuple, gradients: bool, maps: bool) -> _Pass:
        key = (tuple(r.path for r in layers), gradients, maps)
        if key not in self._passes:
            self._passes[key] = _Pass(
                function=tf.function(
                    lambda x, y, sw: self._probe(layers, x, y, sw, gradients, maps),
                    autograph=False,
                ),
                layers=layers,
            )
        return self._passes[key]

    def _probe(self, layers, x, y, sample_weight, gradients: bool, maps: bool) -> dict:
        """The pass's body, traced: intercept, run the model (and the loss), reduce."""
        model = self.model
        by_layer = {id(r.layer): r for r in layers}
        captured: dict[str, tuple[recurrence.LayerRun, tf.Tensor, float]] = {}
        tape = tf.GradientTape(watch_accessed_variables=False) if gradients else None

        def handler(layer, call, args, kwargs):
            own = call(*args, **kwargs)
            recurrent = by_layer[id(layer)]
            if recurrent.path in captured:  # a shared layer: its first call is logged
                return own
            sequences, mask, initial = recurrence.call_arguments(recurrent, call, args, kwargs)
            recomputed = recurrence.run(recurrent, sequences, mask, initial, tape)
            flat = tf.nest.flatten(own)
            error = recurrence.output_error(flat, recomputed)
            captured[recurrent.path] = (recomputed, error, recurrence.tolerance(flat))
            if tape is None:
                return own
            through = [_straight_through(o, r) for o, r in zip(flat, recomputed.outputs)]
            return tf.nest.pack_sequence_as(own, through)

        with compat.calls_intercepted([r.layer for r in layers], handler):
            if tape is None:
                model(x, training=False)
                loss = None
            else:
                with tape:
                    y_pred = model(x, training=False)
                    loss = self._loss_value(model, x, y, y_pred, sample_weight)
        runs = [(path, run) for path, (run, _, _) in captured.items()]
        perturbations = [c.perturbation for _, run in runs for c in run.cells]
        grads = []
        if tape is not None and perturbations:
            grads = tape.gradient(
                loss, perturbations, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        grads_iter = iter(grads)
        cells = {}
        for path, run in runs:
            cells[path] = [
                self._reduce(c, next(grads_iter) if tape is not None else None, maps)
                for c in run.cells
            ]
        return {
            "cells": cells,
            "errors": {path: error for path, (_, error, _) in captured.items()},
            "tolerances": {path: tf.constant(t) for path, (_, _, t) in captured.items()},
        }

    def _loss_value(self, model, x, y, y_pred, sample_weight) -> tf.Tensor:
        if self.loss is None:
            return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        if sample_weight is None:
            value = self.loss(y, y_pred)
        else:
            value = self.loss(y, y_pred, sample_weight=sample_weight)
        return tf.reduce_mean(value)

    def _reduce(self, run: recurrence.CellRun, gradient: tf.Tensor | None, maps: bool) -> dict:
        """What the host needs of one cell: shapes, statistics per name, gradient norms, maps."""
        cell = run.cell
        hidden = run.values[metadata.HIDDEN_STATE]
        result: dict[str, Any] = {"shape": tf.shape(hidden)[1:]}
        result["stats"] = {
            name: activation_stats.activation_stats(
                run.values[name],
                run.valid,
                _thresholds(saturation),
                self.options.histogram_bins,
            )
            for name, saturation in zip(cell.names, cell.saturations)
        }
        if gradient is not None:
            by_time = run.by_input_time(gradient)
            result["gradient_norms"] = activation_stats.gradient_norms(by_time, run.valid)
        if maps:
            sample = self.sample
            result["maps"] = {
                name: activation_stats.sample_map(run.values[name], sample) for name in cell.names
            }
            if gradient is not None:
                masked = tf.where(
                    _expand(run.valid, by_time), by_time, tf.constant(np.nan, by_time.dtype)
                )
                result["maps"][metadata.HIDDEN_STATE_GRADIENT] = activation_stats.sample_map(
                    masked, sample
                )
            result["mask"] = tf.cast(run.valid[sample], tf.float32)
        return result

    def _info(self, recurrent, cell: recurrence.Cell, result: dict) -> metadata.ActivationInfo:
        shape = tuple(int(d) for d in result["shape"])
        return metadata.ActivationInfo(
            **dataclasses.asdict(cell.identity),
            names=cell.names,
            saturations=cell.saturations,
            units=shape[-1],
            spatial=shape[1:-1],
            timesteps=shape[0],
        )

    def _describe(self, tag: str, create: Callable[..., Any], *args: Any) -> Any:
        """``create(*args)``, the metadata of `tag`, on its first write by this logger, else
        None."""
        if tag in self._described:
            return None
        self._described.add(tag)
        return create(*args)

    def _write_statistics(self, info: metadata.ActivationInfo, result: dict, step: int) -> None:
        bins = self.options.histogram_bins
        for name in info.names:
            vector = result["stats"][name]
            tag = metadata.activation_stats_tag(info, name)
            described = self._describe(
                tag, metadata.create_activation_stats_metadata, info, name, bins
            )
            tf.summary.write(tag, vector, step=step, metadata=described)
            if self.options.write_histograms:
                tag = metadata.activation_histogram_tag(info, name)
                described = self._describe(
                    tag, metadata.create_activation_histogram_metadata, info, name
                )
                tf.summary.write(tag, _histogram(vector, bins), step=step, metadata=described)
        if "gradient_norms" in result:
            tag = metadata.gradient_norms_tag(info)
            described = self._describe(tag, metadata.create_gradient_norms_metadata, info)
            tf.summary.write(tag, result["gradient_norms"], step=step, metadata=described)

    def _write_maps(self, info: metadata.ActivationInfo, result: dict, step: int) -> None:
        max_cells = self.options.snapshot_max_cells
        block = snapshot.snapshot_block(info.map_shape, max_cells)
        for name, values in result["maps"].items():
            tag = metadata.activation_map_tag(info, name)
            described = self._describe(
                tag,
                metadata.create_activation_map_metadata,
                info,
                name,
                self.sample,
                max_cells,
                block,
            )
            reduced = snapshot.reduce_snapshot(values.reshape(info.map_shape), max_cells)
            tf.summary.write(tag, reduced, step=step, metadata=described)
        tag = metadata.activation_mask_tag(info)
        described = self._describe(
            tag, metadata.create_activation_map_metadata, info, None, self.sample, max_cells, block
        )
        tf.summary.write(
            tag, _column_means(result["mask"], block[1]), step=step, metadata=described
        )


def _arguments(x: Any, y: Any, sample_weight: Any) -> tuple:
    """The pass's arguments as tensors; None stays None (a separate trace)."""
    return tuple(
        None if part is None else tf.nest.map_structure(tf.convert_to_tensor, part)
        for part in (x, y, sample_weight)
    )


def _straight_through(own: tf.Tensor, recomputed: tf.Tensor) -> tf.Tensor:
    """The layer's own value, with the gradient of the recomputed one (where it is finite, so
    that a diverged layer does not turn its own infinities into NaN)."""
    zero = recomputed - tf.stop_gradient(recomputed)
    zero = tf.where(tf.math.is_finite(recomputed), zero, tf.zeros_like(zero))
    return tf.stop_gradient(own) + tf.cast(zero, own.dtype)


def _thresholds(saturation: str | None) -> tuple[float, float] | None:
    return None if saturation is None else metadata.SATURATION_THRESHOLDS[saturation]


def _expand(valid: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (len(values.shape) - 2)], 0))


def _numpy(result: Any) -> Any:
    return tf.nest.map_structure(lambda t: np.asarray(t), result)


def _histogram(vector: np.ndarray, bins: int) -> np.ndarray:
    """An ``activation_stats`` vector's buckets as TensorBoard's ``[bins, 3]`` histogram."""
    fields = metadata.ACTIVATION_STAT_FIELDS
    low = vector[fields.index("hist_low")]
    high = vector[fields.index("hist_high")]
    edges = metadata.histogram_edges(low, high, bins)
    return np.stack([edges[:-1], edges[1:], vector[-bins:]], axis=1)


def _column_means(mask: np.ndarray, block: int) -> np.ndarray:
    """A ``[time]`` 0/1 mask averaged over runs of `block` timesteps (the maps' columns)."""
    starts = np.arange(0, len(mask), block)
    sums = np.add.reduceat(mask.astype(np.float64), starts) if len(mask) else np.zeros(0)
    return (sums / np.diff(starts, append=len(mask))).astype(np.float32)
