"""`ActivationLogger`: one probe pass per logged step gives every recurrent layer's gate
activations, states and gradients through time, checked and written as activation records.

The pass is one compiled function per set of layers (with or without a target): it calls the
model on the probe batch in inference mode with each logged recurrent layer's ``call``
intercepted (`compat.calls_intercepted`), so that the layer's input sequence, mask and initial
states are captured wherever the layer sits (Sequential, functional, subclassed and nested
models). The layer still runs as it is (cuDNN included) and gives the values the rest of the
model sees; it is also recomputed from its gate slices (`recurrence`), and the two are
compared. With a target, the recomputation carries the gradient: each layer's output is the
layer's own value with the recomputation's gradient (a straight-through sum), so one backward
pass from the loss gives ``dL/dh_t`` of every layer through every later step, and Keras' own
backward pass is not run at all. Statistics are reduced on the device (`activation_stats`) and
every record is written from the graph; only the checks' results reach the host.

A layer whose recomputed outputs differ from its own (`recurrence.TOLERANCE`) is never logged:
its records are not written, one warning names it, it is left out from then on, and the pass
runs again without it to write the other layers' gradients, which went through it.
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


_STATS, _GRADIENTS, _MAPS, _GRADIENT_MAPS = range(4)
"""Columns of the pass's `describe` flags: whether a layer's statistics, gradient norms, maps
and dL/dh_t maps still need their metadata (their first write)."""


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
        self._passes: dict[tuple, Any] = {}
        self._described: set[tuple[str, int]] = set()

    @property
    def model(self) -> Any:
        return self._model()

    @property
    def active_layers(self) -> list[recurrence.RecurrentLayer]:
        """The layers still logged: those whose recomputation has never failed its check."""
        return [r for r in self.layers if r.path not in self._excluded]

    def describe_again(self) -> None:
        """Attaches the metadata to each tag's next write again (see
        `summary.GateLogger.describe_again`)."""
        self._described.clear()

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
            self._log(step, _arguments(x, y, sample_weight), statistics, maps, gradients)
        except Exception as error:  # A logging failure must never stop training.
            self._failed = True
            warnings.warn(
                f"weightgates: logging activations failed at step {step} ({error!r}); no more "
                "activations are logged for this model",
                stacklevel=3,
            )

    def _log(self, step: int, batch: tuple, statistics: bool, maps: bool, gradients: bool):
        """Runs the pass until every layer in it passes its check: a layer that fails is left
        out (with one warning) and, with gradients, the pass runs again without it to write
        the gradients of the others, which went through it."""
        values = True
        while self.active_layers:
            layers = tuple(self.active_layers)
            flags = [[(r.path, k) not in self._described for k in range(4)] for r in layers]
            errors = self._pass(layers, gradients)(
                *batch,
                tf.constant(step, tf.int64),
                tf.constant(statistics),
                tf.constant(maps),
                tf.constant(values),
                tf.constant(flags, tf.bool),
            )
            failed = self._check(layers, errors)
            for recurrent in layers:
                if recurrent.path in failed or recurrent.path not in errors:
                    continue
                written = {
                    _STATS: statistics and values,
                    _MAPS: maps and values,
                    _GRADIENTS: gradients and statistics and not failed,
                    _GRADIENT_MAPS: gradients and maps and not failed,
                }
                self._described.update((recurrent.path, k) for k, done in written.items() if done)
            if not failed or not gradients:
                return
            values = False

    def _check(self, layers, errors: dict) -> set[str]:
        """The layers whose recomputation differs from their own output, each left out from
        now on and warned about once."""
        failed = set()
        for recurrent in layers:
            if recurrent.path not in errors:
                continue
            error, limit = (float(v) for v in errors[recurrent.path])
            if not error <= limit:
                failed.add(recurrent.path)
                warnings.warn(
                    f"weightgates: the recomputed hidden states of layer {recurrent.path!r} "
                    f"differ from its own output by {error:.3g} (tolerance {limit:g}); its "
                    "activations are not logged",
                    stacklevel=5,
                )
        self._excluded.update(failed)
        return failed

    def _pass(self, layers: tuple, gradients: bool) -> Any:
        """The compiled pass over `layers`, with or without gradients; everything else is an
        argument, so one trace serves statistics steps, snapshot steps and reruns."""
        key = (tuple(r.path for r in layers), gradients)
        if key not in self._passes:

            def run(x, y, sample_weight, step, statistics, maps, values, describe):
                return self._probe(
                    layers, gradients, x, y, sample_weight, step, statistics, maps, values, describe
                )

            self._passes[key] = compat.model_function(tf.function(run, autograph=False), self.model)
        return self._passes[key]

    def _probe(
        self, layers, gradients, x, y, sample_weight, step, statistics, maps, values, describe
    ) -> dict:
        """The pass's body, traced: intercept, run the model (and the loss), reduce, write. It
        returns, per layer called, ``[error, tolerance]`` of its check."""
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
            else:
                with tape:
                    y_pred = model(x, training=False)
                    loss = self._loss_value(model, x, y, y_pred, sample_weight)
        runs = [(path, run) for path, (run, _, _) in captured.items()]
        grads: list[Any] = [None] * sum(len(run.cells) for _, run in runs)
        if tape is not None and grads:
            perturbations = [c.perturbation for _, run in runs for c in run.cells]
            grads = tape.gradient(
                loss, perturbations, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        checks = {
            path: tf.stack([error, tf.constant(limit, tf.float32)])
            for path, (_, error, limit) in captured.items()
        }
        ok = {path: check[0] <= check[1] for path, check in checks.items()}
        all_ok = tf.reduce_all(tf.stack([tf.constant(True), *ok.values()]))
        position = {r.path: i for i, r in enumerate(layers)}
        flows = iter(grads)
        with self.writer.as_default():
            for path, run in runs:
                flags = describe[position[path]]
                for cell_run in run.cells:
                    gradient = next(flows)
                    gradient = None if gradient is None else cell_run.by_input_time(gradient)
                    self._write_cell(
                        cell_run, gradient, step, flags, statistics, maps, values, ok[path], all_ok
                    )
        return checks

    def _loss_value(self, model, x, y, y_pred, sample_weight) -> tf.Tensor:
        if self.loss is None:
            return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        if sample_weight is None:
            value = self.loss(y, y_pred)
        else:
            value = self.loss(y, y_pred, sample_weight=sample_weight)
        return tf.reduce_mean(value)

    def _write_cell(
        self, run, gradient, step, describe, statistics, maps, values, ok, all_ok
    ) -> None:
        """Builds one cell's writes: statistics and maps when the layer passed its check;
        gradient norms and the maps' dL/dh_t when every layer did (the gradient went through
        all of them). Maps are computed inside their `tf.cond`, so other steps skip them."""
        info = _info(run)
        names = info.names
        stacked = tf.stack([run.values[name] for name in names])
        bins = self.options.histogram_bins
        lows, highs = activation_stats.thresholds(info.saturations)
        vectors = activation_stats.cell_stats(stacked, run.valid, lows, highs, bins)
        write_values = tf.logical_and(values, ok)

        def write_stats() -> tf.Tensor:
            for i, name in enumerate(names):
                tf.summary.write(
                    metadata.activation_stats_tag(info, name),
                    vectors[i],
                    step=step,
                    metadata=_described(
                        describe[_STATS],
                        metadata.create_activation_stats_metadata(info, name, bins),
                    ),
                )
                if self.options.write_histograms:
                    tf.summary.write(
                        metadata.activation_histogram_tag(info, name),
                        activation_stats.histogram(vectors[i], bins),
                        step=step,
                        metadata=_described(
                            describe[_STATS],
                            metadata.create_activation_histogram_metadata(info, name),
                        ),
                    )
            return tf.constant(True)

        def write_gradient_norms() -> tf.Tensor:
            tf.summary.write(
                metadata.gradient_norms_tag(info),
                activation_stats.gradient_norms(gradient, run.valid),
                step=step,
                metadata=_described(
                    describe[_GRADIENTS], metadata.create_gradient_norms_metadata(info)
                ),
            )
            return tf.constant(True)

        max_cells = self.options.snapshot_max_cells
        block = snapshot.snapshot_block(info.map_shape, max_cells)
        sample = self.sample

        def map_metadata(name: str | None) -> tf.Tensor:
            content = metadata.create_activation_map_metadata(info, name, sample, max_cells, block)
            flag = _GRADIENT_MAPS if name == metadata.HIDDEN_STATE_GRADIENT else _MAPS
            return _described(describe[flag], content)

        def write_maps() -> tf.Tensor:
            reduced = activation_stats.sample_maps(stacked, sample, block)
            for i, name in enumerate(names):
                tf.summary.write(
                    metadata.activation_map_tag(info, name),
                    reduced[i],
                    step=step,
                    metadata=map_metadata(name),
                )
            mask = activation_stats.column_means(tf.cast(run.valid[sample], tf.float32), block[1])
            tf.summary.write(
                metadata.activation_mask_tag(info), mask, step=step, metadata=map_metadata(None)
            )
            return tf.constant(True)

        def write_gradient_map() -> tf.Tensor:
            masked = tf.where(
                _expand(run.valid, gradient.shape.rank),
                gradient,
                tf.constant(np.nan, gradient.dtype),
            )
            reduced = activation_stats.sample_maps(masked[None], sample, block)
            tf.summary.write(
                metadata.activation_map_tag(info, metadata.HIDDEN_STATE_GRADIENT),
                reduced[0],
                step=step,
                metadata=map_metadata(metadata.HIDDEN_STATE_GRADIENT),
            )
            return tf.constant(True)

        def skip() -> tf.Tensor:
            return tf.constant(False)

        # One conditional per kind of record: a `record_if` on a tensor is one per write.
        with tf.summary.record_if(True):
            tf.cond(tf.logical_and(statistics, write_values), write_stats, skip)
            tf.cond(tf.logical_and(maps, write_values), write_maps, skip)
            if gradient is not None:
                tf.cond(tf.logical_and(statistics, all_ok), write_gradient_norms, skip)
                tf.cond(tf.logical_and(maps, all_ok), write_gradient_map, skip)


def _info(run: recurrence.CellRun) -> metadata.ActivationInfo:
    """The cell's `metadata.ActivationInfo`, from the static shape of its values (the probe's
    shape is known when the pass is traced)."""
    cell = run.cell
    shape = run.values[metadata.HIDDEN_STATE].shape[1:]
    if not shape.is_fully_defined():
        raise ValueError(
            f"the probe's shape must be known to log the activations of {cell.identity.layer!r} "
            f"(its values have shape {shape})"
        )
    dims = [int(d) for d in shape]
    return metadata.ActivationInfo(
        **dataclasses.asdict(cell.identity),
        names=cell.names,
        saturations=cell.saturations,
        units=dims[-1],
        spatial=tuple(dims[1:-1]),
        timesteps=dims[0],
    )


def _described(describe: tf.Tensor, content: Any) -> tf.Tensor:
    """The serialized metadata where `describe` (a tag's first write), else empty."""
    return tf.where(describe, content.SerializeToString(), b"")


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


def _expand(valid: tf.Tensor, rank: int) -> tf.Tensor:
    return tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (rank - 2)], 0))
