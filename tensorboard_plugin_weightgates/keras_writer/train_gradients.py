"""Gradients of the training step itself, logged from inside `fit`'s compiled step.

`WeightGatesCallback(gradients="train")` logs, at each logged step, the gradient that the
optimizer applies on that step's training batch, with no extra forward or backward pass, and
the weights after that update, with no call from the host.

How
---
Keras computes that gradient inside its compiled training function, so it is caught where it is
made: when `fit` starts, `attach` wraps the method with which the model's optimizer applies the
final gradients to the variables, and has Keras rebuild its training function, which traces the
wrapper into the graph. There the wrapper adds one ``tf.cond`` on the optimizer's step counter,
right after the update: on a logged step its branch, kept whole as one op, lays the gradients
and the updated weights end to end in flat vectors and calls the statistics function the host
uses too (`stats.packed_stats`, already traced when the callback logged the initial weights, so
the rebuilt training step costs Keras' own trace and a handful of ops more); the small
statistics arrays go into variables (`TrainStepLogger.slots` of them, enough for every logged
step of one call of the training function), with the gradients for the next snapshot. No
summary op runs inside the training step: after the batch, the callback takes the new
statistics (`TrainStepLogger.take`, one scalar copy to the host, then the small arrays) and
writes them from the host. On every other step the branch costs its predicate, with no copy and
no host round trip. Snapshots, which copy whole tensors, stay with the callback on the host, at
their own (rarer) steps. The predicate is evaluated per training step, also inside the loop that
``steps_per_execution > 1`` compiles. `detach` (the callback's ``on_train_end``) restores the
optimizer's method, the training function and ``jit_compile``; a `fit` that ends without
``on_train_end`` (an exception, an interrupt) is undone by the next call of
``make_train_function``, which every `fit` and ``train_on_batch`` makes before its callbacks
start, so a later `fit` without the callback never logs.

The wrapped method, per optimizer family (the innermost one under a ``LossScaleOptimizer``;
`compat.UPDATE_METHODS`, like every private Keras access, lives in `compat`):

* Keras 3, TensorFlow backend: ``_distributed_tf_update_step``.
* tf-keras optimizers: ``_distributed_apply_gradients_fn``.
* tf-keras legacy optimizers (``tf.keras.optimizers.legacy``): ``_distributed_apply``.

Each receives ``(distribution, grads_and_vars)`` in the distribution strategy's cross-replica
context, so the logged gradient is written once, whatever the number of replicas.

What is logged
--------------
Exactly the gradient each variable's update rule receives on that step:

* Loss scaling (``LossScaleOptimizer``, ``mixed_float16``): unscaled, in the loss's units. A step
  whose scaled gradients overflow is skipped by the loss-scale optimizer and logs nothing.
* Cross-replica aggregation (``MirroredStrategy``): the sum over replicas of the per-replica
  gradients of the loss scaled by 1/replicas, i.e. the gradient of the whole global batch.
* Clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``): after clipping, as applied. Where
  the framework clips differs under a distribution strategy: tf-keras clips the aggregated
  gradient, Keras 3 clips each replica's gradient before summing them.
* Weight decay (``weight_decay=``, AdamW) is applied to the weights directly and is not part of
  the gradient; gradient accumulation (Keras 3 ``gradient_accumulation_steps``) logs the
  averaged gradient at the steps that apply it.

Statistics are written at the step count after the update (``optimizer.iterations`` as the
callback reads it at that batch's end), the step of the weights the callback logs then.

Limits
------
The statistics function, whose shapes are all dynamic (one trace for every model), cannot be
compiled by XLA: a model with ``jit_compile=True`` trains without it while attached (with a
warning). The gradients kept for snapshots are one extra copy of the
logged trainable variables, on their device (one per replica under ``MirroredStrategy`` when the
variables are created in the strategy's scope). When something changes the weights after the
optimizer's update method (variable constraints, Keras 3's EMA overwrite), the weights'
statistics are left to the callback on the host (`weights_final_in_update`); so are the steps a
loss-scale optimizer skips and, with ``steps_per_execution > 1``, the steps the callback sees.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata
from tensorboard_plugin_weightgates.format.options import EPOCH
from tensorboard_plugin_weightgates.keras_writer import compat
from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger


class TrainStepLogger:
    """Computes the statistics of the gradients an optimizer applies, and of the weights it
    makes, from inside the training step, for the host to write after the batch.

    One per callback and model. Its variables (the statistics of the last `slots` logged steps,
    their steps and sequence numbers, which gradients each had, the gradients kept for
    snapshots, the step that ends the epoch) are created here, eagerly, so that tracing the
    training step creates none.

    Args:
      logger: the writer; gradients are logged for its `trainable_groups`, weights for all
        its groups.
      update_freq: log when the step count after the update is a multiple of this integer, or
        `"epoch"` to log the step set by `expect_step` (the last step of the epoch).
      keep_values: keep the last logged gradients for `last_gradients` (snapshots).
      log_weights: also compute the weights' statistics after the update. Off when something
        changes the weights after the optimizer's update method (see `weights_final_in_update`),
        then the callback logs them from the host.
      steps_per_execution: training steps per call of the training function (Keras'
        ``steps_per_execution``): the host reads the statistics once per call, so there is room
        for every logged step a call can hold.
    """

    def __init__(
        self,
        logger: GateLogger,
        update_freq: int | str,
        keep_values: bool,
        log_weights: bool = True,
        steps_per_execution: int = 1,
    ):
        if update_freq != EPOCH and not (isinstance(update_freq, int) and update_freq >= 1):
            raise ValueError(f'update_freq must be "epoch" or an integer >= 1, got {update_freq!r}')
        self.logger = logger
        self.update_freq = update_freq
        self.log_weights = log_weights
        per_call = max(1, int(steps_per_execution))
        self.slots = 1 if update_freq == EPOCH else -(-per_call // int(update_freq))
        self._log_fn = compat.logging_function(self._log)
        self._taken = 0
        groups = logger.trainable_groups
        self._keys = [compat.variable_key(g.variable) for g in groups]
        width = len(metadata.STAT_FIELDS) + logger.options.histogram_bins

        def buffers(packings) -> list[tf.Variable]:
            return [
                compat.local_variable(
                    tf.zeros([self.slots, p.segments.slices, width], tf.float64),
                    "weightgates_stats",
                )
                for p in packings
            ]

        with tf.init_scope():
            self._count = compat.local_variable(tf.constant(0, tf.int64), "weightgates_log_count")
            self._sequence = compat.local_variable(
                tf.zeros([self.slots], tf.int64), "weightgates_sequence"
            )
            self._steps = compat.local_variable(
                tf.zeros([self.slots], tf.int64), "weightgates_steps"
            )
            self._present = compat.local_variable(
                tf.zeros([self.slots, len(groups)], tf.bool), "weightgates_present"
            )
            self._gradient_stats = buffers(logger.gradient_packings)
            self._weight_stats = buffers(logger.weight_packings) if log_weights else []
            self._gradient_step = compat.local_variable(
                tf.constant(-1, tf.int64), "weightgates_gradient_step"
            )
            self._expected_step = compat.local_variable(
                tf.constant(-1, tf.int64), "weightgates_expected_step"
            )
            self._values = (
                [
                    compat.local_variable(
                        tf.zeros([p.segments.size], p.dtype), "weightgates_gradients"
                    )
                    for p in logger.gradient_packings
                ]
                if keep_values
                else None
            )
            self._value_steps = compat.local_variable(
                tf.fill([len(groups)], tf.constant(-1, tf.int64)), "weightgates_gradient_steps"
            )

    def expect_step(self, step: int) -> None:
        """With ``update_freq="epoch"``: log the update that makes the step count `step` (-1 for
        none). One small host-to-device write; call it when an epoch begins."""
        self._expected_step.assign(step)

    def last_gradients(self) -> tuple[int, list[np.ndarray | None]] | None:
        """The last logged step and its gradients as kernel matrices (`Packing.kernels`),
        aligned with the logger's `trainable_groups` (None for a kernel without a gradient at
        that step); None before the first logged step or without `keep_values`. Copies the
        gradients to the host."""
        step = int(self._gradient_step.numpy())
        if step < 0 or self._values is None:
            return None
        current = self._value_steps.numpy() == step
        kernels: list[np.ndarray | None] = [None] * len(current)
        for packing, flat in zip(self.logger.gradient_packings, self._values):
            for position, kernel in zip(packing.positions, packing.kernels(flat.numpy())):
                kernels[position] = kernel if current[position] else None
        return step, kernels

    def take(self) -> list[LoggedStep]:
        """The steps logged by the training step since the last call, oldest first: one scalar
        copy to the host, and the small statistics arrays when there are new steps. Warns when
        more steps were logged than `slots` holds (then the oldest are lost)."""
        count = int(self._count.numpy())
        if count <= self._taken:
            return []
        if count - self._taken > self.slots:
            warnings.warn(
                f"WeightGatesCallback: {count - self._taken - self.slots} logged training "
                "steps were overwritten before they were written",
                stacklevel=3,
            )
        sequence, steps, present = (
            self._sequence.numpy(),
            self._steps.numpy(),
            self._present.numpy(),
        )
        gradients = [b.numpy() for b in self._gradient_stats]
        weights = [b.numpy() for b in self._weight_stats]
        taken = []
        for slot in np.argsort(sequence):
            if sequence[slot] > self._taken:
                taken.append(
                    LoggedStep(
                        step=int(steps[slot]),
                        gradients=[g[slot] for g in gradients],
                        present=present[slot].tolist(),
                        weights=[w[slot] for w in weights] if weights else None,
                    )
                )
        self._taken = count
        return taken

    def log_step(
        self, step: tf.Tensor, distribution: tf.distribute.Strategy, grads_and_vars: Sequence
    ) -> None:
        """Adds the logging to the graph being traced, right after the optimizer has applied
        `grads_and_vars` as the update that makes the step count `step`: on logged steps the
        statistics of those gradients, and of the weights the update made (those the callback
        would read at the batch's end), kept for the host; no summary op, no host call.

        One ``tf.cond`` after the update, rather than one for the gradients before it: a branch
        that takes every gradient as input, placed before the update, held back the updates
        until the last gradient was computed, on every step."""
        local = _first_replica(distribution, grads_and_vars)
        if local is None:
            return
        by_key = {compat.variable_key(v): g for g, v in local if g is not None}
        gradients = [by_key.get(key) for key in self._keys]
        tf.cond(self._due(step), lambda: self._log_fn(step, gradients), lambda: None)

    def _due(self, step: tf.Tensor) -> tf.Tensor:
        if self.update_freq == EPOCH:
            return tf.equal(step, self._expected_step)
        return tf.equal(tf.math.floormod(step, self.update_freq), 0)

    def _log(self, step: tf.Tensor, gradients: list) -> None:
        """The logged step: gradient and weight statistics into the next slot, and the values
        for snapshots. Sparse gradients (embeddings) are made dense here, on logged steps
        only."""
        gradients = [None if g is None else tf.convert_to_tensor(g) for g in gradients]
        present = [g is not None for g in gradients]
        slot = tf.math.floormod(self._count, self.slots)[None, None]
        count = self._count + 1

        def put(buffer: tf.Variable, value: Any) -> None:
            buffer.assign(tf.tensor_scatter_nd_update(buffer, slot, value[None]))

        flats = self.logger.flat_gradients(gradients)
        for buffer, value in zip(self._gradient_stats, self.logger.gradient_stats(flats)):
            put(buffer, value)
        if self.log_weights:
            for buffer, value in zip(self._weight_stats, self.logger.weight_stats()):
                put(buffer, value)
        put(self._present, tf.constant(present))
        put(self._steps, step)
        put(self._sequence, count)
        self._count.assign(count)
        if any(present):
            self._gradient_step.assign(step)
            if self._values is not None:
                for variable, flat in zip(self._values, flats):
                    variable.assign(flat)
                self._value_steps.assign(tf.where(present, step, self._value_steps))


@dataclasses.dataclass(frozen=True)
class LoggedStep:
    """The statistics a training step computed, for the host to write (`TrainStepLogger.take`):
    one array per packing of the logger's `gradient_packings` (rows of absent gradients
    included), which trainable groups had a gradient, and the weights' arrays per packing of
    `weight_packings` (None when the weights are logged from the host)."""

    step: int
    gradients: list[np.ndarray]
    present: list[bool]
    weights: list[np.ndarray] | None


def weights_final_in_update(model: Any) -> bool:
    """Whether the weights right after the optimizer's update method are those the model ends
    the step with: Keras applies variable constraints (``kernel_constraint=``...) and, in
    Keras 3, the ``use_ema`` overwrite after that method returns."""
    optimizer = model.optimizer
    while optimizer is not None:
        if getattr(optimizer, "use_ema", False) and getattr(
            optimizer, "ema_overwrite_frequency", None
        ):
            return False
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return all(getattr(v, "constraint", None) is None for v in model.trainable_variables)


def _first_replica(distribution, grads_and_vars) -> list | None:
    """(gradient, variable) pairs as one replica holds them, or None on a replica that must not
    write. In the cross-replica context (a `merge_call`) every replica holds the same, already
    aggregated gradient, and the first replica's copy is taken; without a strategy the pairs are
    the values themselves."""
    pairs = list(grads_and_vars)
    if not _writing_replica():
        return None
    if tf.distribute.in_cross_replica_context():
        return [
            (None if g is None else distribution.experimental_local_results(g)[0], v)
            for g, v in pairs
        ]
    return pairs


def _writing_replica() -> bool:
    """Whether the graph being traced writes: the cross-replica context (where all the
    optimizers wrapped here apply gradients) and code without a strategy do; a strategy that
    applied gradients in its replica context (none does without XLA) writes from replica 0."""
    if tf.distribute.in_cross_replica_context():
        return True
    context = tf.distribute.get_replica_context()
    return tf.get_static_value(context.replica_id_in_sync_group) in (0, None)


class _Attachment:
    """What attaching changed on one model, undone when its last hook detaches.

    Several hooks (several callbacks) share one wrapper of the optimizer's method, which calls
    each in attachment order, so undoing does not depend on the order in which they detach.
    It lives on the model itself (`_ATTRIBUTE`), which it references weakly.
    """

    def __init__(self, model: Any):
        self.model = weakref.ref(model)
        self.optimizer, self.method = compat.update_target(model.optimizer)
        self.hooks: list[TrainStepLogger] = []
        self.own_method = vars(self.optimizer).get(self.method)
        self.train_function, self.train_tf_function = compat.train_functions(model)
        self.jit_compile = bool(getattr(model, "jit_compile", False))
        self.built_function = None
        self._patch_optimizer()
        _set(model, "make_train_function", _undo_then(weakref.ref(model)))
        if self.jit_compile:
            warnings.warn(
                'WeightGatesCallback(gradients="train") computes statistics of dynamic shape '
                "inside the training step, which XLA cannot compile: this fit runs with "
                "jit_compile=False",
                stacklevel=4,
            )
            model.jit_compile = False

    def _patch_optimizer(self) -> None:
        original = getattr(self.optimizer, self.method)
        optimizer, hooks = self.optimizer, self.hooks

        def apply_with_hooks(distribution, grads_and_vars, *args, **kwargs):
            grads_and_vars = list(grads_and_vars)
            step = tf.cast(optimizer.iterations, tf.int64) + 1
            result = original(distribution, grads_and_vars, *args, **kwargs)
            for hook in list(hooks):
                hook.log_step(step, distribution, grads_and_vars)
            return result

        _set(self.optimizer, self.method, apply_with_hooks)

    def rebuild(self) -> None:
        """Has Keras build a new training function, which traces the current hooks, or reuses
        the one built for the same hooks over the same training function by an earlier `fit`:
        tracing a training step costs seconds, which a loop of short `fit` calls (one epoch
        each, say) would otherwise pay every time."""
        model = self.model()
        hooks = tuple(self.hooks)
        traced = vars(model).get(_TRACED)
        if traced is not None and traced[0] is self.train_function and traced[1] == hooks:
            compat.set_train_functions(model, *traced[2])
        else:
            compat.rebuild_train_function(model)
            _set(model, _TRACED, (self.train_function, hooks, compat.train_functions(model)))
        self.built_function = compat.train_functions(model)[0]

    def undo(self) -> None:
        _restore(self.optimizer, self.method, self.own_method)
        model = self.model()
        if model is None:
            return
        _restore(model, "make_train_function", None)
        _restore(model, _ATTRIBUTE, None)
        if compat.train_functions(model)[0] is not self.built_function:
            return  # compiled again since: Keras' own state is newer than ours.
        if self.jit_compile:
            model.jit_compile = True
        compat.set_train_functions(model, self.train_function, self.train_tf_function)


_ATTRIBUTE = "_weightgates_train_gradients"
_TRACED = "_weightgates_traced_step"
"""The last training function traced with hooks, kept across `fit` calls: (the model's own
training function, the hooks, the traced functions as `compat.train_functions` gives them)."""


def _set(owner: Any, name: str, value: Any) -> None:
    """Sets an instance attribute past Keras' attribute tracking."""
    object.__setattr__(owner, name, value)


def _restore(owner: Any, name: str, value: Any) -> None:
    """Puts back an instance attribute, or removes it (so the class's own shows) for None."""
    if value is None:
        vars(owner).pop(name, None)
    else:
        _set(owner, name, value)


def _undo_then(model_ref: weakref.ref):
    """The model's `make_train_function` while attached: Keras calls it when any `fit` or
    `train_on_batch` starts, before the callbacks' `on_train_begin`, so a training that ended
    without `on_train_end` is undone there, and callbacks of the new one attach again."""

    def make_train_function(*args, **kwargs):
        model = model_ref()
        assert model is not None, "a model's own method outlived the model"
        detach_all(model)
        return model.make_train_function(*args, **kwargs)

    return make_train_function


def attach(model: Any, hook: TrainStepLogger) -> None:
    """Starts logging `hook`'s gradients in `model`'s training steps: rebuilds the training
    function with the hook traced in. Attaching a hook again first detaches it.

    Raises:
      compat.TrainGradientsUnavailable: for an optimizer whose update method is unknown (see
        `compat.update_target`).
    """
    detach(model, hook)
    attachment = vars(model).get(_ATTRIBUTE)
    if attachment is None:
        attachment = _Attachment(model)
        _set(model, _ATTRIBUTE, attachment)
    attachment.hooks.append(hook)
    attachment.rebuild()


def detach(model: Any, hook: TrainStepLogger) -> None:
    """Stops logging `hook`'s gradients; the last hook to go restores the model's optimizer
    method, training function and `jit_compile` as they were before the first `attach`."""
    attachment = vars(model).get(_ATTRIBUTE)
    if attachment is None or hook not in attachment.hooks:
        return
    attachment.hooks.remove(hook)
    if attachment.hooks:
        attachment.rebuild()
    else:
        attachment.undo()


def detach_all(model: Any) -> None:
    """Detaches every hook from `model` at once."""
    attachment = vars(model).get(_ATTRIBUTE)
    if attachment is not None:
        attachment.undo()
