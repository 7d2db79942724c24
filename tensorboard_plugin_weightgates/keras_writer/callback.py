"""`WeightGatesCallback`: per-gate weights and gradients of a Keras model during `fit`.

The callback derives from `tf.keras.callbacks.Callback`, which follows TensorFlow's own switch
between Keras 3 and tf-keras (`TF_USE_LEGACY_KERAS=1`), so it fits whichever `model.fit` the
user runs. Batches that are not logged cost one integer comparison in Python: no tensor is
read, so asynchronous training loops are not synchronised by the callback.

Gradients come from one of two sources: a probe batch (`probe`), one extra forward and backward
pass per logged step on a batch of the user's choice; or the training step itself
(`train_gradients`), the gradient the optimizer applies, whose statistics are computed inside
Keras' compiled training function on logged steps only, with those of the weights after the
update, and written from the host after the batch.

Logging never stops training: records go through an `event_writer.EventWriter`, which only the
host flushes (after batches, at most every few seconds), and every host-side log runs in its
guard, so a write error (a full disk, a permission taken away) or an error of the logging code
pauses logging with one warning and a retry later, unless ``on_error="raise"``.
"""

from __future__ import annotations

import os
import tempfile
import typing
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tensorboard_plugin_weightgates.format import options as log_options
from tensorboard_plugin_weightgates.format.options import EPOCH, LogOptions
from tensorboard_plugin_weightgates.keras_writer import compat, gates, train_gradients
from tensorboard_plugin_weightgates.keras_writer.activation_logger import (
    ActivationLogger,
    check_activation_probe,
    check_activation_sample,
)
from tensorboard_plugin_weightgates.keras_writer.event_writer import EventWriter
from tensorboard_plugin_weightgates.keras_writer.probe import (
    check_probe_batch,
    check_probe_inputs,
    compile_probe_gradients,
    model_strategy,
)
from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger

TRAIN = "train"


class WeightGatesCallback(tf.keras.callbacks.Callback):
    """Logs each layer's weights and gradients per direction, kernel and gate to TensorBoard.

    Recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM, their cells in `RNN`, stacked cells,
    inside `Bidirectional` and `TimeDistributed`, in nested models) are split per gate in Keras'
    storage order (LSTM input/forget/cell/output, GRU update/reset/candidate); every other layer
    with weights is logged per variable. Records go to `log_dir/train`, like
    `keras.callbacks.TensorBoard`, at the global batch count (`optimizer.iterations`); open them
    in TensorBoard's *Weight Gates* tab.

    Example:
    ```python
    from tensorboard_plugin_weightgates import WeightGatesCallback

    model.fit(x, y, epochs=5, callbacks=[
        WeightGatesCallback(log_dir="logs/run1", update_freq=10, gradients="train")])
    ```
    then `tensorboard --logdir logs`.

    Args:
      log_dir: the run's directory; records are written to its `train` subdirectory.
      update_freq: `"epoch"` to log at the end of each epoch, or an integer N to log every N
        batches (`"batch"` means 1). The weights before training are logged too.
      snapshot_freq: when to also store the values themselves for heatmaps: `"epoch"` (at the
        end of each epoch), an integer N (at the first logged step after every N batches), or
        None for statistics only. Large kernels are block-reduced to `snapshot_max_cells`.
      layers: None for every layer with weights, or a list of layer names (a name or a path
        such as `"encoder/lstm"`) and/or layer classes (`keras.layers.LSTM` also matches it
        inside `Bidirectional`).
      gradients: None; `"train"`: at each logged step, the gradient the optimizer applies on
        that step's training batch (unscaled, aggregated across replicas, after clipping; see
        `train_gradients`), computed inside the compiled training step at no cost on other
        steps; or a probe batch `(x, y)` or `(x, y, sample_weight)`: at each logged step, the
        gradient of the compiled loss on that batch (inference mode: dropout off, batch-norm
        statistics untouched), at the cost of one forward and backward pass.
      histogram_bins: number of equal-width buckets per gate histogram.
      write_histograms: also write each gate as a standard TensorBoard histogram (tags under
        `weightgates/`), for TensorBoard's own Time Series tab. Off by default: the Weight
        Gates tab draws its histograms from the statistics records, and these copies about
        double a run's size and add a card per gate and kind to Time Series.
      near_zero: |w| at or below which a weight counts as zero (sparsity, dead units).
      gradient_near_zero: the same for gradients.
      snapshot_max_cells: the most cells one gate's snapshot keeps.
      activations: a probe batch for the recurrent layers' gate activations, logged at every
        statistics step (maps of one sample at snapshot steps): inputs `x`, or `(x, y)` /
        `(x, y, sample_weight)` for gradients through time (dL/dh_t, of the compiled loss), or
        True for the probe batch of `gradients=`. See `keras_writer.activations`.
      activation_sample: the probe sample whose unit x timestep maps are written.
      on_error: what a failed write (a full disk, a directory made read-only, a network file
        system gone) or a failure of the logging itself does: `"warn"` warns once, naming the
        directory and the error, and training goes on while logging pauses and is retried
        with a backoff (5 s doubling to 5 min; logging resumes in a new event file, and what
        was written before stays readable); `"raise"` raises the error, which stops `fit`.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        update_freq: int | str = EPOCH,
        snapshot_freq: int | str | None = EPOCH,
        layers: Sequence[Any] | None = None,
        gradients: str | tuple | None = None,
        histogram_bins: int = log_options.DEFAULT_BINS,
        write_histograms: bool = log_options.DEFAULT_WRITE_HISTOGRAMS,
        near_zero: float = log_options.DEFAULT_NEAR_ZERO,
        gradient_near_zero: float = log_options.DEFAULT_GRADIENT_NEAR_ZERO,
        snapshot_max_cells: int = log_options.DEFAULT_SNAPSHOT_MAX_CELLS,
        activations: Any = None,
        activation_sample: int = 0,
        on_error: str = "warn",
    ):
        super().__init__()
        compat.accept_tensor_logs(self)
        self.log_dir = _writable_dir(log_dir)
        self.update_freq = log_options.check_frequency("update_freq", update_freq)
        self.snapshot_freq = log_options.check_optional_frequency("snapshot_freq", snapshot_freq)
        self.layers = None if layers is None else gates.check_layers(layers)
        self.gradients = _gradient_source(gradients)
        self.activations = check_activation_probe(activations, self.gradients)
        self.activation_sample = check_activation_sample(activation_sample, self.activations)
        self.on_error = log_options.check_on_error(on_error)
        self.options = LogOptions(
            histogram_bins=histogram_bins,
            near_zero=near_zero,
            gradient_near_zero=gradient_near_zero,
            snapshot_max_cells=snapshot_max_cells,
            write_histograms=write_histograms,
        )
        self._logged_model: weakref.ref | None = None
        self._logger: GateLogger | None = None
        self._activation_logger: ActivationLogger | None = None
        self._events: EventWriter | None = None
        self._described_generation = 0
        self._gradient_fn: Any = None
        self._train_step: train_gradients.TrainStepLogger | None = None
        self._attached = False
        self._last_gradient_snapshot_step: int | None = None
        self._first_step = 0
        self._batches = 0
        self._epoch_offset = 0
        self._last_decided = -1
        self._last_stats_step: int | None = None
        self._last_activation_step: int | None = None
        self._last_snapshot_step: int | None = None

    def on_train_begin(self, logs=None):
        if not _is_chief(self.model):
            return
        if self._logged_model is not None and self._logged_model() is not self.model:
            raise ValueError(
                "WeightGatesCallback logs one model per run; create a new callback, with its "
                f"own log_dir, for another model (log_dir={self.log_dir!r} holds the first)"
            )
        self._logged_model = weakref.ref(self.model)
        if self._events is None:
            self._events = EventWriter(
                os.path.join(self.log_dir, "train"), self.on_error, "WeightGatesCallback"
            )
        self._first_step = self._step()
        self._batches = self._epoch_offset = 0
        self._last_decided = self._first_step
        self._attached = False
        self._events.tick()
        if self._start():
            self._attach_train_gradients()
            self._guarded_log(
                statistics=True, snapshot_values=self.snapshot_freq is not None, gradients=False
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_offset = self._batches
        if self._attached and self.update_freq == EPOCH:
            self._step_logger.expect_step(self._epoch_end_step())

    def on_train_batch_end(self, batch, logs=None):
        """Costs integer arithmetic and a clock read on batches that are not logged: the global
        step is counted here, and read from the optimizer only when logging."""
        self._batches = self._epoch_offset + batch + 1
        if self._events is None:
            return
        self._events.tick()
        step = self._first_step + self._batches
        frequency = self.update_freq
        if isinstance(frequency, int) and step // frequency > self._last_decided // frequency:
            self._last_decided = step
            if self._start():
                self._guarded_log(statistics=True, snapshot_values=self._snapshot_due)
        if self.gradients == TRAIN and not self._attached and self._start():
            self._attach_train_gradients()

    def on_epoch_end(self, epoch, logs=None):
        if self._events is None or not self._start():
            return
        self._guarded_log(
            statistics=self.update_freq == EPOCH,
            snapshot_values=lambda: self.snapshot_freq == EPOCH or self._snapshot_due(),
        )
        self._events.tick(flush=True)

    def on_train_end(self, logs=None):
        """Logs the final state, so the last step of training is always there to look at, and
        gives the model back its own training step."""
        if self._events is None or not self._start():
            return
        try:
            self._guarded_log(statistics=True, snapshot_values=self.snapshot_freq is not None)
            self._events.tick(flush=True)
        finally:
            if self._attached:
                train_gradients.detach(self.model, self._step_logger)
                self._attached = False

    def _start(self) -> bool:
        """Splits the model once it has weights: a model built lazily by its first batch (a
        Sequential without an Input, a subclassed model) is split after that batch, and then
        logs training gradients from its next batch on."""
        if self._logger is None:
            if not self.model.built:
                return False
            self._check_probes(every_axis=not self._batches)
            writer = typing.cast(EventWriter, self._events).writer
            with compat.local_variables():
                self._logger = GateLogger(self.model, writer, self.layers, self.options)
                if self.activations is not None:
                    self._activation_logger = ActivationLogger(
                        self.model, writer, self.layers, self.options, self.activation_sample
                    )
            if not self._logger.groups:
                warnings.warn(
                    "WeightGatesCallback: the model has no layer with weights matching "
                    f"layers={self.layers!r}; nothing will be logged",
                    stacklevel=3,
                )
        return bool(self._logger.groups)

    def _check_probes(self, every_axis: bool) -> None:
        """Checks the probe batches against the model's inputs, once the model is built: at
        `on_train_begin` (before any training step), or after the first batch for a model that
        batch builds (then only the number of axes and the last one: see
        `check_probe_inputs`)."""
        if isinstance(self.gradients, tuple):
            check_probe_inputs(self.model, self.gradients[0], "gradients", every_axis)
        if self.activations is not None:
            check_probe_inputs(self.model, self.activations[0], "activations", every_axis)

    @property
    def _gate_logger(self) -> GateLogger:
        """The model's logger, which `_start` makes before anything is logged."""
        if self._logger is None:
            raise RuntimeError("WeightGatesCallback logged before the model was split")
        return self._logger

    @property
    def _step_logger(self) -> train_gradients.TrainStepLogger:
        """The training step's logger, which `_attach_train_gradients` makes before it
        attaches."""
        if self._train_step is None:
            raise RuntimeError("WeightGatesCallback used training gradients before attaching")
        return self._train_step

    def _attach_train_gradients(self) -> None:
        """With `gradients="train"`, traces the logging of gradients and weights into the
        model's training step, once per `fit`; the logging state (described tags, kept values)
        lasts across `fit` calls."""
        if self.gradients != TRAIN or not self._gate_logger.trainable_groups:
            return
        try:
            compat.update_target(self.model.optimizer)
        except compat.TrainGradientsUnavailable as error:
            warnings.warn(f"WeightGatesCallback: {error}; this fit logs weights only", stacklevel=3)
            self.gradients = None
            return
        if self._train_step is None:
            self._train_step = train_gradients.TrainStepLogger(
                self._gate_logger,
                self.update_freq,
                keep_values=self.snapshot_freq is not None,
                log_weights=train_gradients.weights_final_in_update(self.model),
                steps_per_execution=_steps_per_execution(self.model),
            )
        if self.update_freq == EPOCH:
            self._step_logger.expect_step(self._epoch_end_step())
        train_gradients.attach(self.model, self._step_logger)
        self._attached = True

    def _epoch_end_step(self) -> int:
        """The step count at the end of the current epoch, or -1 when the number of steps per
        epoch is unknown (then `update_freq="epoch"` logs no training gradients). Counted from
        the optimizer's step at this point, not from the start of training: a loss-scale
        optimizer does not count the steps it skips on overflow."""
        steps = (self.params or {}).get("steps")
        if not steps:
            warnings.warn(
                'WeightGatesCallback(gradients="train", update_freq="epoch") needs a known '
                "number of steps per epoch (pass steps_per_epoch to fit, or use an integer "
                "update_freq); no training gradients are logged this epoch",
                stacklevel=3,
            )
            return -1
        return self._step() + int(steps) - (self._batches - self._epoch_offset)

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _snapshot_due(self) -> bool:
        if not isinstance(self.snapshot_freq, int):
            return False
        if self._last_snapshot_step is None:
            return True
        return self._step() - self._last_snapshot_step >= self.snapshot_freq

    def _guarded_log(
        self,
        statistics: bool,
        snapshot_values: bool | Callable[[], bool],
        gradients: bool = True,
    ) -> None:
        """`_log` in the event writer's guard, skipped while logging is paused. After the writer
        has reopened, every tag is described again (the records that carried their metadata may
        have been lost with the failed file). `snapshot_values` may be a callable, evaluated in
        the guard."""
        events = typing.cast(EventWriter, self._events)
        if not events.active:
            return
        with events.guard():
            if events.reopened != self._described_generation:
                self._described_generation = events.reopened
                self._describe_again()
            if callable(snapshot_values):
                snapshot_values = snapshot_values()
            self._log(statistics, bool(snapshot_values), gradients)

    def _describe_again(self) -> None:
        self._gate_logger.describe_again()
        if self._activation_logger is not None:
            self._activation_logger.describe_again()

    def _log(self, statistics: bool, snapshot_values: bool, gradients: bool = True) -> None:
        """Logs what is still missing at the current global step: a step already logged (the
        end of one epoch and the start of the next `fit`) is never written twice. The step is
        taken before anything is written, so that a log cut short (an interrupt, a failed
        write) is never written again: a step may lack records, never hold two. Gradients are
        not probed before the first training step, when the compiled loss is not built."""
        step = self._step()
        if self._train_step is not None:
            self._write_train_steps()
        activations = statistics and self._activation_logger is not None
        activations = activations and step != self._last_activation_step
        statistics = statistics and step != self._last_stats_step
        snapshot_values = snapshot_values and step != self._last_snapshot_step
        if not (statistics or activations or snapshot_values):
            return
        if statistics:
            self._last_stats_step = step
        if activations:
            self._last_activation_step = step
        if snapshot_values:
            self._last_snapshot_step = step
        if statistics or snapshot_values:
            self._log_parameters(step, statistics, snapshot_values, gradients)
        if self._activation_logger is not None and (activations or snapshot_values):
            x, y, sample_weight = typing.cast(tuple, self.activations)
            self._activation_logger.log(
                step,
                x,
                y,
                sample_weight,
                statistics=activations,
                maps=snapshot_values,
                gradients=gradients,
            )

    def _log_parameters(
        self, step: int, statistics: bool, snapshot_values: bool, gradients: bool
    ) -> None:
        """Weights, and gradients of the probe batch or the last training step, at `step`."""
        self._gate_logger.log_weights(step, statistics=statistics, snapshot_values=snapshot_values)
        if gradients and isinstance(self.gradients, tuple) and self._gate_logger.trainable_groups:
            self._gate_logger.log_gradients(
                self._probe_gradients(),
                step,
                statistics=statistics,
                snapshot_values=snapshot_values,
            )
        if snapshot_values and self._train_step is not None:
            self._snapshot_train_gradients()

    def _write_train_steps(self) -> None:
        """Writes what the training step computed at its logged steps since the last call: a
        step whose weights it logged is not logged again from the host."""
        logger = self._gate_logger
        for logged in self._step_logger.take():
            if any(logged.present):
                logger.write_stats("gradients", logged.step, logged.gradients, logged.present)
            if logged.weights is not None:
                logger.write_stats("weights", logged.step, logged.weights)
                self._last_stats_step = logged.step

    def _snapshot_train_gradients(self) -> None:
        """Writes the last logged training gradients, at their own step, unless written."""
        last = self._step_logger.last_gradients()
        if last is None or last[0] == self._last_gradient_snapshot_step:
            return
        step, kernels = last
        self._gate_logger.snapshot_gradient_kernels(kernels, step)
        self._last_gradient_snapshot_step = step

    def _probe_gradients(self) -> list[Any]:
        if self._gradient_fn is None:
            variables = [g.variable for g in self._gate_logger.trainable_groups]
            self._gradient_fn = compile_probe_gradients(self.model, variables)
        with compat.loss_metrics_paused(self.model):
            return list(self._gradient_fn(*typing.cast(tuple, self.gradients)))


def _gradient_source(gradients: Any) -> str | tuple | None:
    """`"train"`, a probe batch converted to tensors, or None.

    Raises:
      ValueError: naming the argument, the value and what is allowed.
    """
    if isinstance(gradients, str):
        if gradients == TRAIN:
            try:
                compat.check_train_gradients_supported(tf.keras)
            except compat.TrainGradientsUnavailable as error:
                raise ValueError(f"gradients: {error}") from None
            return TRAIN
        raise ValueError(
            f'gradients must be None, "{TRAIN}" or a probe batch (x, y) or '
            f"(x, y, sample_weight), got {gradients!r}"
        )
    return check_probe_batch(gradients)


def _steps_per_execution(model) -> int:
    """Training steps per call of the training function: an int in Keras 3, a variable in
    tf-keras (mirrored under a distribution strategy)."""
    value = getattr(model, "steps_per_execution", None) or 1
    return max(1, int(value.numpy() if hasattr(value, "numpy") else value))


def _is_chief(model) -> bool:
    """Under a multi-worker strategy only the chief writes; single-host strategies (Mirrored,
    OneDevice) run callbacks once, in the cross-replica context, so they always write."""
    return bool(getattr(model_strategy(model).extended, "should_checkpoint", True))


def _writable_dir(log_dir: Any) -> str:
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise ValueError(f"log_dir must be a non-empty path, got {log_dir!r}")
    path = os.fspath(log_dir)
    if "://" in path:
        return path
    try:
        os.makedirs(os.path.join(path, "train"), exist_ok=True)
        with tempfile.TemporaryFile(dir=os.path.join(path, "train")):
            pass
    except OSError as error:
        raise ValueError(f"log_dir {path!r} is not writable: {error}") from error
    return path
