"""The logging graph does not grow with the model: the statistics of every slice are one call of
one function, traced once per dtype, and each kernel adds only its read to the graph.

Measured on the traced graphs themselves (op counts), for a 2-layer model (GRU + Dense) and a
7-layer one (3 Bidirectional LSTM + 3 GRU + Dense), weights and gradients, from the host and
from inside the training step (`gradients="train"`).
"""

from __future__ import annotations

import collections

import pytest
import tensorflow as tf
from test_callback import data

from tensorboard_plugin_weightgates import WeightGatesCallback
from tensorboard_plugin_weightgates.keras_writer import stats
from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger

pytestmark = pytest.mark.keras
keras = tf.keras

PER_KERNEL = {"Placeholder", "ReadVariableOp", "Reshape", "Const", "StridedSlice", "Identity"}
"""The ops that reading one kernel into the flat vector takes (a GRU's bias rows need a slice);
every other op of a logging graph is shared by all kernels."""


def two_layers() -> keras.Model:
    inputs = keras.Input((5, 3))
    hidden = keras.layers.GRU(4)(inputs)
    return compiled(keras.Model(inputs, keras.layers.Dense(2)(hidden)))


def seven_layers() -> keras.Model:
    inputs = keras.Input((5, 3))
    hidden = inputs
    for _ in range(3):
        hidden = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(hidden)
    for i in range(3):
        hidden = keras.layers.GRU(3, return_sequences=i < 2)(hidden)
    return compiled(keras.Model(inputs, keras.layers.Dense(2)(hidden)))


def compiled(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def op_counts(function, *args) -> collections.Counter:
    graph = tf.function(function, autograph=False).get_concrete_function(*args).graph
    return collections.Counter(op.type for op in graph.get_operations())


def shared(counts: collections.Counter) -> collections.Counter:
    return collections.Counter({k: v for k, v in counts.items() if k not in PER_KERNEL})


def kernels(logger: GateLogger, trainable: bool = False) -> int:
    return len(logger.trainable_groups if trainable else logger.groups)


@pytest.fixture(scope="module")
def loggers(tmp_path_factory):
    writer = tf.summary.create_file_writer(str(tmp_path_factory.mktemp("graph")))
    return [GateLogger(make(), writer) for make in (two_layers, seven_layers)]


def test_weight_statistics_graph_is_the_same_for_2_and_7_layers(loggers):
    small, large = (op_counts(logger.weight_stats) for logger in loggers)
    assert kernels(loggers[1]) >= 5 * kernels(loggers[0])
    assert shared(small) == shared(large)
    assert shared(large)["PartitionedCall"] == 1  # the statistics: one call
    growth = sum(large.values()) - sum(small.values())
    assert growth <= 5 * (kernels(loggers[1]) - kernels(loggers[0]))


def test_gradient_statistics_graph_is_the_same_for_2_and_7_layers(loggers):
    def counts(logger):
        zeros = [tf.zeros(g.variable.shape) for g in logger.trainable_groups]
        return op_counts(lambda g: logger.gradient_stats(logger.flat_gradients(g)), zeros)

    small, large = (counts(logger) for logger in loggers)
    assert shared(small) == shared(large)
    growth = sum(large.values()) - sum(small.values())
    assert growth <= 5 * (kernels(loggers[1], True) - kernels(loggers[0], True))


def test_statistics_are_traced_once_for_every_model_and_kind(loggers, tmp_path):
    """Once traced (by the first model), the statistics function serves the 7-layer model,
    both kinds and the callback without a new trace."""
    function = stats.compiled_packed_stats(tf.float32)
    x, y = data(16)
    counts = []
    for logger, make in zip(loggers, (two_layers, seven_layers)):
        logger.log_weights(0)
        logger.log_weights(1)
        logger.log_gradients([tf.ones(g.variable.shape) for g in logger.trainable_groups], 1)
        callback = WeightGatesCallback(log_dir=str(tmp_path / make.__name__), update_freq=1)
        make().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        counts.append(function.experimental_get_tracing_count())
    assert counts[0] == counts[1] >= 1
    graph = function.get_concrete_function().graph
    assert len(graph.get_operations()) < 250


def test_training_step_adds_the_same_ops_for_2_and_7_layers(tmp_path):
    """The branch traced into Keras' training step on logged steps: the same shared ops (one
    call of the statistics per kind) whatever the model."""
    shared_counts = []
    for make in (two_layers, seven_layers):
        model = make()
        callback = WeightGatesCallback(log_dir=str(tmp_path / make.__name__), gradients="train")
        callback.set_model(model)
        x, y = data(8)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        step_logger = callback._train_step
        gradients = [tf.zeros(g.variable.shape) for g in step_logger.logger.trainable_groups]
        counts = op_counts(step_logger._log, tf.constant(1, tf.int64), gradients)
        shared_counts.append(shared(counts))
    assert shared_counts[0] == shared_counts[1]
