"""Gradients of the compiled loss on a fixed probe batch, for the callback's `gradients=`.

A probe shows how the loss would pull every gate at a logged step, on a batch of the user's
choice, at the cost of one extra forward and backward pass per logged step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tensorboard_plugin_weightgates.keras_writer import compat


def compile_probe_gradients(model, variables: Sequence[Any]):
    """A tf.function giving the compiled loss's gradient on the probe batch for each logged
    variable, in inference mode so that probing never changes the model (dropout, batch-norm).

    It runs in the replica context of the model's strategy (distributed variables have no
    gradient outside it): each replica takes the whole probe batch, with the loss scaled by
    1/replicas as in a training step, so one replica's result times the number of replicas is
    the probe batch's gradient. Taking it locally needs no collective, so it never waits for
    workers that do not log.
    """
    strategy = model_strategy(model)

    def replica_gradients(x, y, sample_weight):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        gradients = tape.gradient(loss, variables)
        return [None if g is None else tf.convert_to_tensor(g) for g in gradients]

    def probe(x, y, sample_weight=None):
        per_replica = strategy.run(replica_gradients, args=(x, y, sample_weight))
        replicas = float(strategy.num_replicas_in_sync)
        return [
            None if g is None else strategy.experimental_local_results(g)[0] * replicas
            for g in per_replica
        ]

    return compat.model_function(tf.function(probe), model)


def model_strategy(model) -> tf.distribute.Strategy:
    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


def check_probe_batch(gradients: Any) -> tuple | None:
    """Validates the callback's `gradients=` probe batch and converts it to tensors once.

    Raises:
      ValueError: naming the argument, the value and what is allowed.
    """
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


def check_probe_inputs(model: Any, x: Any, argument: str, every_axis: bool = True) -> None:
    """Checks probe inputs `x` against the inputs `model` declares, so that a probe that does
    not fit fails before training rather than at its first logged step, in Keras' words, which
    do not name the argument. Models without declared inputs (subclassed ones) are not checked.

    Args:
      every_axis: compare every axis but the batch; otherwise only the number of axes and the
        last one (for a model built by its first batch, whose other sizes are that batch's,
        which a probe may differ from: a sequence of another length).

    Raises:
      ValueError: naming `argument` (``gradients`` or ``activations``), the shapes expected
        and the shapes received.
    """
    expected = _declared_inputs(model)
    if expected is None:
        return
    if isinstance(x, dict):
        names = [getattr(t, "name", None) for t in expected]
        if not all(name in x for name in names):
            return
        received = [x[name] for name in names]
    else:
        received = tf.nest.flatten(x)
    wanted = [tuple(tf.TensorShape(t.shape).as_list()) for t in expected]
    got = [tuple(tf.TensorShape(tf.convert_to_tensor(r).shape).as_list()) for r in received]
    if len(got) != len(wanted) or not all(_fits(w, g, every_axis) for w, g in zip(wanted, got)):
        raise ValueError(
            f"{argument}: the probe batch does not fit the model's inputs: expected "
            f"{_shapes(wanted)} (None: any size), got {_shapes(got)}"
        )


def _declared_inputs(model: Any) -> list | None:
    try:
        inputs = model.inputs
    except AttributeError:
        return None
    return list(inputs) if inputs else None


def _fits(wanted: tuple, got: tuple, every_axis: bool) -> bool:
    if len(wanted) != len(got):
        return False
    axes = range(1, len(wanted)) if every_axis else range(len(wanted) - 1, len(wanted))
    return all(wanted[i] is None or wanted[i] == got[i] for i in axes if i > 0)


def _shapes(shapes: list[tuple]) -> str:
    text = ", ".join(str(s) for s in shapes)
    return f"shape {text}" if len(shapes) == 1 else f"{len(shapes)} inputs of shapes {text}"
