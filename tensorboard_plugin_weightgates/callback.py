"""`WeightGatesCallback`: per-gate weights and gradients of a Keras model during `fit`.

The callback derives from `tf.keras.callbacks.Callback`, which follows TensorFlow's own switch
between Keras 3 and tf-keras (`TF_USE_LEGACY_KERAS=1`), so it fits whichever `model.fit` the
user runs. Batches that are not logged cost one integer comparison in Python: no tensor is
read, so asynchronous training loops are not synchronised by the callback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tensorboard_plugin_weightgates import metadata
from tensorboard_plugin_weightgates.summary import (
    DEFAULT_GRADIENT_NEAR_ZERO,
    DEFAULT_NEAR_ZERO,
    GateLogger,
    LogOptions,
)

EPOCH = "epoch"


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
        WeightGatesCallback(log_dir="logs/run1", update_freq=10, gradients=(x[:64], y[:64]))])
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
      gradients: None; or a probe batch `(x, y)` or `(x, y, sample_weight)`: at each logged
        step, the gradient of the compiled loss on that batch (inference mode: dropout off,
        batch-norm statistics untouched) with respect to every logged trainable variable.
      histogram_bins: number of equal-width buckets per gate histogram.
      write_histograms: also write each gate as a standard TensorBoard histogram (tags under
        `weightgates/`), for TensorBoard's own Time Series tab.
      near_zero: |w| at or below which a weight counts as zero (sparsity, dead units).
      gradient_near_zero: the same for gradients.
      snapshot_max_cells: the most cells one gate's snapshot keeps.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        update_freq: int | str = EPOCH,
        snapshot_freq: int | str | None = EPOCH,
        layers: Sequence[Any] | None = None,
        gradients: tuple | None = None,
        histogram_bins: int = metadata.DEFAULT_BINS,
        write_histograms: bool = True,
        near_zero: float = DEFAULT_NEAR_ZERO,
        gradient_near_zero: float = DEFAULT_GRADIENT_NEAR_ZERO,
        snapshot_max_cells: int = metadata.DEFAULT_SNAPSHOT_MAX_CELLS,
    ):
        super().__init__()
        self._supports_tf_logs = True
        self.log_dir = _writable_dir(log_dir)
        self.update_freq = _frequency("update_freq", update_freq, allow_none=False)
        self.snapshot_freq = _frequency("snapshot_freq", snapshot_freq, allow_none=True)
        self.layers = _layer_selection(layers)
        self.gradients = _probe_batch(gradients)
        self.options = LogOptions(
            bins=histogram_bins,
            near_zero=near_zero,
            gradient_near_zero=gradient_near_zero,
            snapshot_max_cells=snapshot_max_cells,
            write_histograms=write_histograms,
        )
        self._logger: GateLogger | None = None
        self._writer = None
        self._gradient_fn = None
        self._batches = 0
        self._epoch_offset = 0
        self._last_logged_batch = -1
        self._last_snapshot_batch = None

    def on_train_begin(self, logs=None):
        if not _is_chief(self.model):
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "train"), max_queue=1000, flush_millis=5000
            )
        if self._logger is None or self._logger.model is not self.model:
            self._logger = GateLogger(self.model, self._writer, self.layers, self.options)
            self._gradient_fn = None
            if not self._logger.groups:
                warnings.warn(
                    "WeightGatesCallback: the model has no layer with weights matching "
                    f"layers={self.layers!r}; nothing will be logged",
                    stacklevel=2,
                )
        self._log(statistics=True, snapshot_values=self.snapshot_freq is not None, gradients=False)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_offset = self._batches

    def on_train_batch_end(self, batch, logs=None):
        self._batches = self._epoch_offset + batch + 1
        if self.update_freq == EPOCH or self._logger is None:
            return
        if self._batches // self.update_freq > self._last_logged_batch // self.update_freq:
            self._log(statistics=True, snapshot_values=self._snapshot_due())

    def on_epoch_end(self, epoch, logs=None):
        if self._logger is None:
            return
        snapshot_now = self.snapshot_freq == EPOCH or self._snapshot_due()
        statistics = self.update_freq == EPOCH and self._last_logged_batch != self._batches
        if statistics or snapshot_now:
            self._log(statistics=statistics, snapshot_values=snapshot_now)
        self._writer.flush()

    def on_train_end(self, logs=None):
        """Logs the final state, so the last step of training is always there to look at."""
        if self._logger is None:
            return
        statistics = self._last_logged_batch != self._batches
        snapshot_now = self.snapshot_freq is not None and self._last_snapshot_batch != self._batches
        if statistics or snapshot_now:
            self._log(statistics=statistics, snapshot_values=snapshot_now)
        self._writer.flush()

    def _snapshot_due(self) -> bool:
        if not isinstance(self.snapshot_freq, int):
            return False
        if self._last_snapshot_batch is None:
            return True
        return self._batches - self._last_snapshot_batch >= self.snapshot_freq

    def _log(self, statistics: bool, snapshot_values: bool, gradients: bool = True) -> None:
        """Logs at the current global step; `statistics` is False when this step's statistics
        were written already and only its snapshot is still due. Gradients are not probed
        before the first training step, when the compiled loss is not built yet."""
        step = int(self.model.optimizer.iterations.numpy())
        self._logger.log_weights(step, statistics=statistics, snapshot_values=snapshot_values)
        if gradients and self.gradients is not None and self._logger.trainable_groups:
            self._logger.log_gradients(
                self._probe_gradients(),
                step,
                statistics=statistics,
                snapshot_values=snapshot_values,
            )
        self._last_logged_batch = self._batches
        if snapshot_values:
            self._last_snapshot_batch = self._batches

    def _probe_gradients(self) -> list[Any]:
        if self._gradient_fn is None:
            self._gradient_fn = _compile_probe_gradients(self.model, self._logger)
        with _loss_metrics_paused(self.model):
            return list(self._gradient_fn(*self.gradients))


def _compile_probe_gradients(model, logger: GateLogger):
    """A tf.function giving the compiled loss's gradient on the probe batch for each logged
    variable, in inference mode so that probing never changes the model (dropout, batch-norm).

    It runs in the replica context of the model's strategy (distributed variables have no
    gradient outside it): each replica takes the whole probe batch, with the loss scaled by
    1/replicas as in a training step, so the summed result is the probe batch's gradient.
    """
    variables = [g.variable for g in logger.trainable_groups]
    strategy = _strategy(model)

    def replica_gradients(x, y, sample_weight):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        gradients = tape.gradient(loss, variables)
        return [None if g is None else tf.convert_to_tensor(g) for g in gradients]

    @tf.function
    def probe(x, y, sample_weight=None):
        per_replica = strategy.run(replica_gradients, args=(x, y, sample_weight))
        return [
            None if g is None else strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None)
            for g in per_replica
        ]

    return probe


def _strategy(model) -> tf.distribute.Strategy:
    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


class _NoMetric:
    def update_state(self, *args, **kwargs):
        return None


@contextlib.contextmanager
def _loss_metrics_paused(model):
    """Keeps the probe's loss out of the model's loss metrics while the probe is traced.

    `compute_loss` also feeds the loss to the loss-tracking metrics (tf-keras always, Keras 3
    for multi-output models): the probe would shift the training loss users see, and such
    updates are refused in the cross-replica context of a `tf.distribute` strategy. Both
    frameworks keep those metrics on a private attribute of the compiled loss, swapped here
    for the duration of the call (the traced graph then never references them).
    """
    saved = []
    compile_loss = getattr(model, "_compile_loss", None)
    if compile_loss is not None and getattr(compile_loss, "_metrics", None):
        saved.append((compile_loss, "_metrics", compile_loss._metrics))
        compile_loss._metrics = [None] * len(compile_loss._metrics)
    container = getattr(model, "compiled_loss", None)
    if container is not None and hasattr(container, "_total_loss_mean"):
        saved.append((container, "_total_loss_mean", container._total_loss_mean))
        container._total_loss_mean = _NoMetric()
        per_output = getattr(container, "_per_output_metrics", None)
        if per_output:
            saved.append((container, "_per_output_metrics", per_output))
            container._per_output_metrics = [None] * len(per_output)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _is_chief(model) -> bool:
    """Under a multi-worker strategy only the chief writes; single-host strategies (Mirrored,
    OneDevice) run callbacks once, in the cross-replica context, so they always write."""
    return bool(getattr(_strategy(model).extended, "should_checkpoint", True))


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


def _frequency(name: str, value: Any, allow_none: bool) -> int | str | None:
    if value is None and allow_none:
        return None
    if value == "batch":
        return 1
    if value == EPOCH:
        return EPOCH
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    allowed = '"epoch", "batch" or an integer >= 1' + (" or None" if allow_none else "")
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _layer_selection(layers: Any) -> list[Any] | None:
    if layers is None:
        return None
    if isinstance(layers, (str, type)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(
            f"layers must be None or a non-empty list of layer names and classes, got {layers!r}"
        )
    for item in layers:
        if not isinstance(item, (str, type)) or item == "":
            raise ValueError(
                f"layers must hold layer names (str) or layer classes, got {item!r} in {layers!r}"
            )
    return list(layers)


def _probe_batch(gradients: Any) -> tuple | None:
    if gradients is None:
        return None
    if not isinstance(gradients, (tuple, list)) or len(gradients) not in (2, 3):
        raise ValueError(
            "gradients must be None or a probe batch (x, y) or (x, y, sample_weight), "
            f"got {_describe(gradients)}"
        )
    try:
        batch = tuple(tf.nest.map_structure(tf.convert_to_tensor, list(gradients)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"gradients: the probe batch cannot be made tensors: {error}") from error
    x = tf.nest.flatten(batch[0])
    if not x or x[0].shape.rank == 0 or x[0].shape[0] == 0:
        raise ValueError("gradients: the probe batch x must hold at least one sample")
    return batch


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)[:80]
