"""`gradients="train"`: the gradient the optimizer applies, logged from inside `fit`'s step.

Each logged gradient is checked against an independent `tf.GradientTape` on the same batch with
the weights the model had before that batch (recorded by a callback), per gate, through the
event files and TensorBoard's own data provider.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from test_callback import data, read_logdir, small_model

from tensorboard_plugin_weightgates import WeightGatesCallback
from tensorboard_plugin_weightgates.format import metadata
from tensorboard_plugin_weightgates.keras_writer import compat, gates

pytestmark = pytest.mark.keras
keras = tf.keras
LEGACY = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
EXACT = 10**6  # snapshot_max_cells that keeps every gate whole


class WeightsBeforeBatch(keras.callbacks.Callback):
    """The model's weights before each training step, keyed by the step count after it."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) + 1
        self.weights[step] = [w.copy() for w in self.model.get_weights()]


def slice_key(info) -> tuple:
    return (info.layer, info.direction, info.kernel, info.gate)


def tape_gradients(weights, x, y, make_model=None) -> dict:
    """{slice key: gradient of the mean-squared-error loss over (x, y)} for a model of
    `make_model` (default: `small_model`) with these weights."""
    reference = (make_model or small_model)()
    reference.set_weights(weights)
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, reference(x, training=True))
    variables = reference.trainable_variables
    by_variable = {id(v): g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))}
    return {
        (s.layer, s.direction, s.kernel, s.gate): by_variable[id(s.variable)][s.index]
        for s in gates.split_model(reference)
    }


def logged_gradients(logdir: str) -> tuple[dict, dict]:
    """({step: {slice key: stats record}}, {step: {slice key: snapshot values}}) of gradients."""
    stats: dict = {}
    for content, series in read_logdir(logdir, metadata.PLUGIN_NAME)["train"].values():
        parsed = metadata.parse_stats_content(content)
        if parsed.kind == "gradients":
            for step, vector in series:
                record = metadata.parse_stats_tensor(vector, parsed.bins)
                stats.setdefault(step, {})[slice_key(parsed.info)] = record
    snapshots: dict = {}
    runs = read_logdir(logdir, metadata.SNAPSHOT_PLUGIN_NAME)
    for content, series in runs.get("train", {}).values():
        parsed = metadata.parse_snapshot_content(content)
        if parsed.kind == "gradients":
            for step, grid in series:
                values = metadata.parse_snapshot_tensor(grid)[0]
                snapshots.setdefault(step, {})[slice_key(parsed.info)] = values
    return stats, snapshots


def gradient_steps(logdir: str, kind: str = "gradients") -> set:
    """The distinct step lists of the stats tags of one kind."""
    return {
        tuple(step for step, _ in series)
        for content, series in read_logdir(logdir, metadata.PLUGIN_NAME)["train"].values()
        if metadata.parse_stats_content(content).kind == kind
    }


def assert_matches(stats: dict, snapshots: dict | None, expected: dict) -> None:
    """Logged per-gate stats (and snapshot values) equal the expected gradients."""
    assert set(stats) == set(expected)
    for key, values in expected.items():
        values = values.astype(np.float64)
        record = stats[key]
        assert record["count"] == values.size
        np.testing.assert_allclose(
            record["l2_norm"], np.sqrt((values**2).sum()), rtol=1e-5, atol=1e-9
        )
        np.testing.assert_allclose(record["mean"], values.mean(), rtol=1e-4, atol=1e-8)
        if snapshots is not None:
            logged = snapshots[key].reshape(values.shape)
            np.testing.assert_allclose(logged, values, rtol=1e-5, atol=1e-8)


def batches(x, y, batch_size):
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def loss_scale_sgd():
    return keras.mixed_precision.LossScaleOptimizer(keras.optimizers.SGD(0.05))


OPTIMIZERS = {"SGD": lambda: keras.optimizers.SGD(0.05), "LossScaleOptimizer": loss_scale_sgd}
if LEGACY:
    OPTIMIZERS["legacy SGD"] = lambda: keras.optimizers.legacy.SGD(0.05)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_each_logged_gradient_equals_an_independent_tape(tmp_path, optimizer):
    model = small_model()
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss="mse")
    x, y = data(40)
    recorder = WeightsBeforeBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path),
        update_freq=2,
        snapshot_freq=2,
        gradients="train",
        snapshot_max_cells=EXACT,
    )
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder, callback]
    )
    stats, snapshots = logged_gradients(str(tmp_path))
    assert sorted(stats) == [2, 4, 6, 8, 10]
    assert sorted(snapshots) == [2, 4, 6, 8, 10]
    per_epoch = batches(x, y, 8)
    for step in stats:
        batch_x, batch_y = per_epoch[(step - 1) % len(per_epoch)]
        expected = tape_gradients(recorder.weights[step], batch_x, batch_y)
        assert_matches(stats[step], snapshots[step], expected)


class WeightsAfterBatch(keras.callbacks.Callback):
    """The model's weights after each training step, keyed by the step count."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_train_begin(self, logs=None):
        self.weights[0] = [w.copy() for w in self.model.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.weights[step] = [w.copy() for w in self.model.get_weights()]


def constrained_model():
    """An LSTM whose kernel Keras clips after each update (`kernel_constraint`)."""
    inputs = keras.Input((5, 3))
    hidden = keras.layers.LSTM(4, kernel_constraint=keras.constraints.MaxNorm(0.05), name="lstm")(
        inputs
    )
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    return model


@pytest.mark.parametrize("make_model", [small_model, constrained_model])
def test_weights_are_logged_as_the_step_ends_once_per_step(tmp_path, make_model):
    """In "train" mode the weights' statistics are written by the training step itself, after
    the update (or from the host where a constraint changes them after it): each logged
    step's statistics, update size included, are those of the weights the model holds at that
    batch's end, and no step is written twice (the callback still logs the initial weights and
    the final state from the host)."""
    keras.utils.set_random_seed(0)
    model = make_model()
    x, y = data(40)
    recorder = WeightsAfterBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=2, snapshot_freq=None, gradients="train"
    )
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder, callback]
    )
    slices = gates.split_model(model)
    position = {id(v): i for i, v in enumerate(model.weights)}
    series = {}
    for content, points in read_logdir(str(tmp_path), metadata.PLUGIN_NAME)["train"].values():
        parsed = metadata.parse_stats_content(content)
        if parsed.kind == "weights":
            series[slice_key(parsed.info)] = dict(points), parsed.bins
    assert len(series) == len(slices)
    for s in slices:
        points, bins = series[slice_key(s)]
        assert sorted(points) == [0, 2, 4, 6, 8, 10]
        for step, vector in points.items():
            record = metadata.parse_stats_tensor(vector, bins)
            values = recorder.weights[step][position[id(s.variable)]][s.index].astype(np.float64)
            np.testing.assert_allclose(
                record["l2_norm"], np.sqrt((values**2).sum()), rtol=1e-5, atol=1e-9
            )
            if step == 0:
                assert np.isnan(record["update_size"])
                continue
            before = recorder.weights[step - 2][position[id(s.variable)]][s.index]
            norm = np.linalg.norm(before)
            expected = np.linalg.norm(values - before) / norm if norm else np.nan
            np.testing.assert_allclose(record["update_size"], expected, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("clip", ["clipnorm", "global_clipnorm"])
def test_clipped_gradient_is_logged_as_applied(tmp_path, clip):
    """The tab shows the gradient after clipping: the one the update rule receives."""
    limit = 1e-3
    model = small_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05, **{clip: limit}), loss="mse")
    x, y = data(8)
    recorder = WeightsBeforeBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=1, gradients="train", snapshot_max_cells=EXACT
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[recorder, callback])
    stats, snapshots = logged_gradients(str(tmp_path))
    raw = tape_gradients(recorder.weights[1], x, y)
    reference = small_model()
    slices = gates.split_model(reference)
    whole = {}  # every variable's gradient, flattened, from its gate slices
    for s in slices:
        whole[id(s.variable)] = np.concatenate(
            [whole.get(id(s.variable), []), raw[slice_key(s)].ravel().astype(np.float64)]
        )
    if clip == "clipnorm":
        scale = {key: min(1.0, limit / np.linalg.norm(g)) for key, g in whole.items()}
    else:
        norm = np.sqrt(sum((g**2).sum() for g in whole.values()))
        scale = dict.fromkeys(whole, min(1.0, limit / norm))
    assert min(scale.values()) < 1.0
    expected = {slice_key(s): raw[slice_key(s)] * scale[id(s.variable)] for s in slices}
    assert_matches(stats[1], snapshots[1], expected)


def test_mirrored_strategy_logs_the_global_batch_gradient_once(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = small_model()
    x, y = data(32)
    recorder = WeightsBeforeBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=1, gradients="train", snapshot_max_cells=EXACT
    )
    model.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[recorder, callback]
    )
    assert len(os.listdir(tmp_path / "train")) == 1
    assert gradient_steps(str(tmp_path)) == {(1, 2)}
    assert gradient_steps(str(tmp_path), "weights") == {(0, 1, 2)}
    stats, snapshots = logged_gradients(str(tmp_path))
    assert sorted(snapshots) == [2]
    for step, (batch_x, batch_y) in zip((1, 2), batches(x, y, 16)):
        expected = tape_gradients(recorder.weights[step], batch_x, batch_y)
        assert_matches(stats[step], snapshots.get(step), expected)


def test_training_step_restored_after_fit(tmp_path):
    model = small_model()
    x, y = data(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    plain = model.train_function
    target, method = compat.update_target(model.optimizer)
    seen = []

    class DuringFit(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((model.train_function is plain, method in vars(target)))

    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback, DuringFit()])
    assert seen == [(False, True), (False, True)]
    assert model.train_function is plain
    assert method not in vars(target)
    assert "make_train_function" not in vars(model)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert gradient_steps(str(tmp_path)) == {(3, 4)}


def test_repeated_fit_reuses_the_traced_step(tmp_path):
    """A loop of short `fit` calls traces the logging step once, and still logs every call."""
    model = small_model()
    x, y = data(16)
    functions = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            functions.append(model.train_function)

    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    for _ in range(3):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback, Record()])
    assert len(functions) == 6
    assert all(f is functions[0] for f in functions)
    assert gradient_steps(str(tmp_path)) == {(1, 2, 3, 4, 5, 6)}
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback, Record()])
    assert functions[-1] is not functions[0]


def test_interrupted_fit_is_undone_by_the_next_one(tmp_path):
    model = small_model()
    x, y = data(32)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise RuntimeError("interrupted")

    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback, Interrupt()])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    callback._events.flush()
    assert gradient_steps(str(tmp_path)) == {(1, 2)}
    target, method = compat.update_target(model.optimizer)
    assert method not in vars(target)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert gradient_steps(str(tmp_path)) == {(1, 2, 7, 8, 9, 10)}


def test_composes_with_tensorboard_and_another_callback(tmp_path):
    """keras' TensorBoard sets its own record_if for the whole fit; two train-gradient callbacks
    share one wrapper of the optimizer and each logs at its own frequency."""
    model = small_model()
    x, y = data(48)
    every, second = tmp_path / "every", tmp_path / "second"
    callbacks = [
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"), update_freq=4, histogram_freq=1),
        WeightGatesCallback(log_dir=str(every), update_freq=1, gradients="train"),
        WeightGatesCallback(log_dir=str(second), update_freq=2, gradients="train"),
    ]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
    assert gradient_steps(str(every)) == {(1, 2, 3, 4, 5, 6)}
    assert gradient_steps(str(second)) == {(2, 4, 6)}
    target, method = compat.update_target(model.optimizer)
    assert method not in vars(target)


def test_model_built_by_its_first_batch_logs_from_its_next_batch(tmp_path):
    """The first batch builds the model: its weights are logged from the host, then the
    training step is traced with the logging, which writes the next batches' gradients."""
    model = keras.Sequential([keras.layers.LSTM(3), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(24)
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert gradient_steps(str(tmp_path), "weights") == {(1, 2, 3)}
    assert gradient_steps(str(tmp_path)) == {(2, 3)}


def test_steps_per_execution_logs_every_due_step(tmp_path):
    model = small_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", steps_per_execution=3)
    x, y = data(72)
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=2, gradients="train")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert gradient_steps(str(tmp_path)) == {(2, 4, 6, 8)}
    # The host sees steps 3, 6 and 9 and, like without "train", logs the weights at those
    # the training step has not logged.
    assert gradient_steps(str(tmp_path), "weights") == {(0, 2, 3, 4, 6, 8, 9)}


def test_epoch_frequency_logs_the_last_batch_of_each_epoch(tmp_path):
    model = small_model()
    x, y = data(24)
    recorder = WeightsBeforeBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), gradients="train", snapshot_max_cells=EXACT
    )
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder, callback]
    )
    stats, snapshots = logged_gradients(str(tmp_path))
    assert sorted(stats) == sorted(snapshots) == [3, 6]
    expected = tape_gradients(recorder.weights[6], x[16:], y[16:])
    assert_matches(stats[6], snapshots[6], expected)


def test_jit_compile_is_off_while_attached_then_restored(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs))
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    during = []

    class Jit(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            during.append(model.jit_compile)

    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients="train")
    x, y = np.ones((8, 3), "float32"), np.ones((8, 2), "float32")
    with pytest.warns(UserWarning, match="jit_compile=False"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback, Jit()])
    assert during == [False]
    assert model.jit_compile
    assert gradient_steps(str(tmp_path)) == {(1,)}


@pytest.mark.parametrize("value", ["train", "probe", "TRAIN", ""])
def test_gradients_argument(tmp_path, value):
    if value == "train":
        assert WeightGatesCallback(log_dir=str(tmp_path), gradients=value).gradients == "train"
    else:
        with pytest.raises(ValueError, match=r'gradients must be None, "train" or a probe'):
            WeightGatesCallback(log_dir=str(tmp_path), gradients=value)


def attention_model():
    """Self-attention over 5 steps of 3 features (2 heads of 2), pooled to 2 outputs."""
    inputs = keras.Input((5, 3))
    attended = keras.layers.MultiHeadAttention(2, 2, name="attention")(inputs, inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(attended)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def attention_heads(variables: dict[str, np.ndarray]) -> dict[tuple, np.ndarray]:
    """{(kernel, gate): values} of an attention layer's variables by name, cut per head with
    NumPy: the query, key and value projections along their heads axis, the output kernel's
    heads transposed to [output, head_dim]."""
    heads = {}
    for name in ("query", "key", "value"):
        kernel, bias = variables[f"{name}/kernel"], variables[f"{name}/bias"]
        for h in range(kernel.shape[1]):
            heads[(f"{name}/kernel", f"head_{h}")] = kernel[:, h, :]
            heads[(f"{name}/bias", f"head_{h}")] = bias[h]
    for h, head in enumerate(variables["attention_output/kernel"]):
        heads[("attention_output/kernel", f"head_{h}")] = head.T
    heads[("attention_output/bias", None)] = variables["attention_output/bias"]
    return heads


def test_attention_gradients_are_logged_per_head(tmp_path):
    """The training step's gradients of an attention layer, per head, in the statistics (on
    the device) and the snapshots (on the host), equal an independent tape's cut with NumPy."""
    keras.utils.set_random_seed(0)
    model = attention_model()
    x, y = data(16)
    recorder = WeightsBeforeBatch()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path),
        update_freq=1,
        snapshot_freq=1,
        gradients="train",
        snapshot_max_cells=EXACT,
        layers=["attention"],
    )
    model.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[recorder, callback]
    )
    stats, snapshots = logged_gradients(str(tmp_path))
    assert sorted(stats) == [1, 2]
    names = ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel"]
    names += ["value/bias", "attention_output/kernel", "attention_output/bias"]
    for step in stats:
        reference = attention_model()
        reference.set_weights(recorder.weights[step])
        batch_x, batch_y = x[8 * (step - 1) : 8 * step], y[8 * (step - 1) : 8 * step]
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(batch_y, reference(batch_x, training=True))
        variables = reference.get_layer("attention").trainable_variables
        gradients = dict(zip(names, (g.numpy() for g in tape.gradient(loss, variables))))
        expected = {
            ("attention", "forward", kernel, gate): values.astype(np.float64)
            for (kernel, gate), values in attention_heads(gradients).items()
        }
        assert set(stats[step]) == set(expected)
        # Absolute tolerances: the key bias's gradient is zero up to rounding (a softmax does
        # not change when every score of a query moves by the same q . b_key).
        for key, values in expected.items():
            record = stats[step][key]
            assert record["count"] == values.size
            np.testing.assert_allclose(record["l2_norm"], np.linalg.norm(values), atol=1e-7)
            np.testing.assert_allclose(record["mean"], values.mean(), atol=1e-8)
            logged = snapshots[step][key].reshape(values.shape)
            np.testing.assert_allclose(logged, values, rtol=1e-5, atol=1e-8)
