"""The callback end to end: model.fit -> event files -> TensorBoard's own data provider."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard import context as tb_context
from tensorboard.backend.event_processing import data_provider as tb_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer

from tensorboard_plugin_weightgates import WeightGatesCallback, log_gradients, log_weights
from tensorboard_plugin_weightgates.format import metadata, options, snapshot
from tensorboard_plugin_weightgates.keras_writer import gates

pytestmark = pytest.mark.keras
keras = tf.keras


def read_logdir(logdir: str, plugin_name: str):
    """Every tensor event of a plugin, through the data provider TensorBoard itself uses:
    {run: {tag: (content, [(step, ndarray), ...])}}."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={plugin_name: 0, "histograms": 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = tb_data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = tb_context.RequestContext()
    listing = provider.list_tensors(ctx, experiment_id="", plugin_name=plugin_name)
    result = {}
    for run, tags in listing.items():
        data = provider.read_tensors(
            ctx,
            experiment_id="",
            plugin_name=plugin_name,
            downsample=10**6,
            run_tag_filter=tb_data_provider.provider.RunTagFilter([run], list(tags)),
        )
        result[run] = {
            tag: (tags[tag].plugin_content, [(d.step, d.numpy) for d in data[run][tag]])
            for tag in tags
        }
    return result


def small_model():
    inputs = keras.Input((5, 3))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="bidi")(
        inputs
    )
    hidden = keras.layers.GRU(3, name="gru")(hidden)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def data(samples=40):
    rng = np.random.default_rng(1)
    return (
        rng.normal(size=(samples, 5, 3)).astype("float32"),
        rng.normal(size=(samples, 2)).astype("float32"),
    )


class Recorder(keras.callbacks.Callback):
    """Keeps each slice's values at every batch end, keyed by global step, to compare with what
    the callback logged."""

    def __init__(self):
        super().__init__()
        self.values = {}

    def on_train_begin(self, logs=None):
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._record()

    def _record(self):
        step = int(self.model.optimizer.iterations.numpy())
        self.values[step] = {
            (s.layer, s.direction, s.kernel, s.gate): s.values.copy()
            for s in gates.split_model(self.model)
        }


def test_round_trip_every_slice_and_step(tmp_path):
    model = small_model()
    x, y = data()
    recorder = Recorder()
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=2, snapshot_freq=4, gradients=(x[:8], y[:8])
    )
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[recorder, callback])

    stats_runs = read_logdir(str(tmp_path), metadata.PLUGIN_NAME)
    assert list(stats_runs) == ["train"]
    stats_tags = stats_runs["train"]
    expected_slices = {(s.layer, s.direction, s.kernel, s.gate) for s in gates.split_model(model)}
    weights_seen = set()
    for tag, (content, series) in stats_tags.items():
        parsed = metadata.parse_stats_content(content)
        info = parsed.info
        assert tag == metadata.stats_tag(info, parsed.kind)
        steps = [step for step, _ in series]
        assert steps == ([0, 2, 4, 6, 8, 10] if parsed.kind == "weights" else [2, 4, 6, 8, 10])
        if parsed.kind != "weights":
            continue
        key = (info.layer, info.direction, info.kernel, info.gate)
        weights_seen.add(key)
        for step, vector in series:
            record = metadata.parse_stats_tensor(vector, parsed.bins)
            values = recorder.values[step][key].astype(np.float64)
            assert record["count"] == values.size
            np.testing.assert_allclose(record["mean"], values.mean(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(record["max"], values.max(), rtol=1e-6)
            np.testing.assert_allclose(record["l2_norm"], np.sqrt((values**2).sum()), rtol=1e-5)
            assert record["counts"].sum() == values.size
        update = [metadata.parse_stats_tensor(v, parsed.bins)["update_size"] for _, v in series]
        assert np.isnan(update[0])
        previous = recorder.values[series[1][0] - 2][key]
        current = recorder.values[series[1][0]][key]
        if np.linalg.norm(previous) == 0:
            assert np.isnan(update[1])
        else:
            np.testing.assert_allclose(
                update[1],
                np.linalg.norm(current - previous) / np.linalg.norm(previous),
                rtol=1e-4,
            )
    assert weights_seen == expected_slices
    kinds = {metadata.parse_stats_content(c).kind for c, _ in stats_tags.values()}
    assert kinds == {"weights", "gradients"}

    snapshots = read_logdir(str(tmp_path), metadata.SNAPSHOT_PLUGIN_NAME)["train"]
    for _tag, (content, series) in snapshots.items():
        parsed = metadata.parse_snapshot_content(content)
        expected_steps = [0, 4, 8, 10] if parsed.kind == "weights" else [4, 8, 10]
        assert [step for step, _ in series] == expected_steps
        if parsed.kind != "weights":
            continue
        info = parsed.info
        key = (info.layer, info.direction, info.kernel, info.gate)
        for step, grid in series:
            planes = metadata.parse_snapshot_tensor(grid)
            expected = snapshot.reduce_snapshot(recorder.values[step][key], parsed.max_cells)
            np.testing.assert_array_equal(planes, expected)


def test_histograms_for_time_series_tab(tmp_path):
    model = small_model()
    x, y = data(16)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[
            WeightGatesCallback(log_dir=str(tmp_path / "on"), update_freq=1, write_histograms=True),
            WeightGatesCallback(log_dir=str(tmp_path / "off"), update_freq=1),
        ],
    )
    assert read_logdir(str(tmp_path / "off"), "histograms") == {}  # opt-in
    histograms = read_logdir(str(tmp_path / "on"), "histograms")["train"]
    stats_tags = read_logdir(str(tmp_path / "on"), metadata.PLUGIN_NAME)["train"]
    assert len(histograms) == len(stats_tags)
    for tag, (_, series) in histograms.items():
        assert tag.startswith(metadata.TAG_PREFIX + "/weights/")
        assert [s for s, _ in series] == [0, 1, 2]
        for _, buckets in series:
            assert buckets.shape == (options.DEFAULT_BINS, 3)
    assert not set(histograms) & set(stats_tags)


def test_gradients_equal_independent_tape(tmp_path):
    model = small_model()
    x, y = data(16)
    probe = (x[:4], y[:4])
    callback = WeightGatesCallback(
        log_dir=str(tmp_path),
        update_freq="epoch",
        snapshot_freq="epoch",
        gradients=probe,
        snapshot_max_cells=10**6,
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(probe[1], model(probe[0], training=False))
    variables = model.trainable_variables
    by_variable = {id(v): g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))}
    snapshots = read_logdir(str(tmp_path), metadata.SNAPSHOT_PLUGIN_NAME)["train"]
    checked = 0
    for gate_slice in gates.split_model(model):
        info_key = None
        for _tag, (content, series) in snapshots.items():
            parsed = metadata.parse_snapshot_content(content)
            info = parsed.info
            if parsed.kind == "gradients" and (
                info.layer,
                info.direction,
                info.kernel,
                info.gate,
            ) == (gate_slice.layer, gate_slice.direction, gate_slice.kernel, gate_slice.gate):
                info_key = series[-1][1]
        expected = by_variable[id(gate_slice.variable)][gate_slice.index]
        logged = metadata.parse_snapshot_tensor(info_key)[0]
        np.testing.assert_allclose(logged.reshape(expected.shape), expected, rtol=1e-4, atol=1e-6)
        checked += 1
    assert checked == len(gates.split_model(model))


def test_nan_weights_are_counted_not_fatal(tmp_path):
    model = small_model()
    x, y = data(16)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    kernel[0, 0] = np.nan
    kernel[1, 1] = np.inf
    head.set_weights([kernel, bias])
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1, gradients=(x, y))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    stats_tags = read_logdir(str(tmp_path), metadata.PLUGIN_NAME)["train"]
    tag = next(
        t
        for t, (c, _) in stats_tags.items()
        if (p := metadata.parse_stats_content(c)).info.layer == "head"
        and p.info.kernel == "kernel"
        and p.kind == "weights"
    )
    content, series = stats_tags[tag]
    first = metadata.parse_stats_tensor(series[0][1], metadata.parse_stats_content(content).bins)
    assert first["nan_count"] == 1 and first["inf_count"] == 1


def test_layers_filter_by_name_and_class(tmp_path):
    model = small_model()
    x, y = data(8)
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), layers=["head", keras.layers.GRU], update_freq="epoch"
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    stats_tags = read_logdir(str(tmp_path), metadata.PLUGIN_NAME)["train"]
    layers = {metadata.parse_stats_content(c).info.layer for c, _ in stats_tags.values()}
    assert layers == {"head", "gru"}


def test_no_matching_layer_warns(tmp_path):
    model = small_model()
    x, y = data(8)
    callback = WeightGatesCallback(log_dir=str(tmp_path), layers=[keras.layers.ConvLSTM2D])
    with pytest.warns(UserWarning, match="nothing will be logged"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])


def test_misspelt_layer_name_fails_with_the_model_layers(tmp_path):
    model = small_model()
    x, y = data(8)
    callback = WeightGatesCallback(log_dir=str(tmp_path), layers=["haed"])
    with pytest.raises(ValueError, match=r"\['haed'\] select no layer.*head"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"update_freq": 0}, "update_freq must be"),
        ({"update_freq": "often"}, "update_freq must be"),
        ({"update_freq": True}, "update_freq must be"),
        ({"snapshot_freq": -3}, "snapshot_freq must be"),
        ({"layers": []}, "layers must be"),
        ({"layers": [3]}, "layers entries must be"),
        ({"gradients": (1,)}, "gradients must be"),
        ({"gradients": "probe"}, "gradients must be"),
        ({"histogram_bins": 1}, "histogram_bins must be"),
        ({"histogram_bins": 2.5}, "histogram_bins must be"),
        ({"near_zero": -1.0}, "near_zero must be"),
        ({"gradient_near_zero": float("nan")}, "gradient_near_zero must be"),
        ({"snapshot_max_cells": 0}, "snapshot_max_cells must be"),
        ({"write_histograms": "yes"}, "write_histograms must be"),
        ({"log_dir": ""}, "log_dir must be"),
        # Bounded where a larger value would pass and then fail fit (Bincount's int32 counts,
        # int64 steps): the message names the argument, the value and the range.
        (
            {"histogram_bins": 10**9},
            "histogram_bins must be an integer from 2 to 65536, got 1000000000",
        ),
        (
            {"snapshot_max_cells": 10**15},
            "snapshot_max_cells must be an integer from 1 to 2147483647, got 10{15}",
        ),
        ({"snapshot_max_cells": 1e15}, "snapshot_max_cells must be an integer"),
        ({"update_freq": 2**63}, f"update_freq must be .* to {2**63 - 1}, got {2**63}"),
        ({"snapshot_freq": 2**63}, f"snapshot_freq must be .* to {2**63 - 1} or None, got {2**63}"),
        ({"on_error": "ignore"}, """on_error must be "warn" or "raise", got 'ignore'"""),
        ({"on_error": None}, "on_error must be"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path, kwargs, message):
    kwargs.setdefault("log_dir", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        WeightGatesCallback(**kwargs)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("histogram_bins", options.MAX_BINS),
        ("snapshot_max_cells", options.MAX_SNAPSHOT_CELLS),
        ("update_freq", options.MAX_FREQUENCY),
        ("snapshot_freq", options.MAX_FREQUENCY),
    ],
)
def test_largest_allowed_values_are_accepted(tmp_path, argument, value):
    callback = WeightGatesCallback(log_dir=str(tmp_path), **{argument: value})
    assert getattr(callback.options, argument, getattr(callback, argument, None)) == value


def test_custom_loop_options_are_bounded_too(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with pytest.raises(ValueError, match="histogram_bins must be an integer from 2 to 65536"):
        log_weights(small_model(), 0, writer, histogram_bins=10**9)


def test_unwritable_log_dir_fails_at_construction(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="log_dir .* is not writable"):
        WeightGatesCallback(log_dir=str(blocker / "run"))


def logged_gradient_snapshots(logdir: str) -> dict:
    """{(layer, direction, kernel, gate): last gradient snapshot's plane 0}."""
    snapshots = read_logdir(logdir, metadata.SNAPSHOT_PLUGIN_NAME)["train"]
    result = {}
    for content, series in snapshots.values():
        parsed = metadata.parse_snapshot_content(content)
        if parsed.kind == "gradients":
            info = parsed.info
            key = (info.layer, info.direction, info.kernel, info.gate)
            result[key] = metadata.parse_snapshot_tensor(series[-1][1])[0]
    return result


def test_mirrored_strategy_writes_once_the_whole_probe_gradient(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = small_model()
    x, y = data(32)
    probe = (x[:8], y[:8])
    callback = WeightGatesCallback(
        log_dir=str(tmp_path), update_freq=1, gradients=probe, snapshot_max_cells=10**6
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    event_files = os.listdir(tmp_path / "train")
    assert len(event_files) == 1
    stats_tags = read_logdir(str(tmp_path), metadata.PLUGIN_NAME)["train"]
    for content, series in stats_tags.values():
        kind = metadata.parse_stats_content(content).kind
        assert [step for step, _ in series] == ([0, 1, 2] if kind == "weights" else [1, 2])

    reference = small_model()
    reference.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(probe[1], reference(probe[0], training=False))
    variables = reference.trainable_variables
    gradients = dict(zip(map(id, variables), tape.gradient(loss, variables)))
    logged = logged_gradient_snapshots(str(tmp_path))
    for gate_slice in gates.split_model(reference):
        expected = gradients[id(gate_slice.variable)].numpy()[gate_slice.index]
        key = (gate_slice.layer, gate_slice.direction, gate_slice.kernel, gate_slice.gate)
        np.testing.assert_allclose(
            logged[key].reshape(expected.shape), expected, rtol=1e-4, atol=1e-6
        )


def logged_steps(logdir: str, kind: str = "weights") -> set:
    """The distinct step lists of every stats tag of a kind."""
    stats_tags = read_logdir(logdir, metadata.PLUGIN_NAME)["train"]
    return {
        tuple(step for step, _ in series)
        for content, series in stats_tags.values()
        if metadata.parse_stats_content(content).kind == kind
    }


def test_model_built_by_its_first_batch_is_logged(tmp_path):
    model = keras.Sequential([keras.layers.LSTM(3), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(16)
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert logged_steps(str(tmp_path)) == {(1, 2)}


def test_repeated_fit_never_logs_a_step_twice(tmp_path):
    model = small_model()
    x, y = data(16)
    callback = WeightGatesCallback(log_dir=str(tmp_path), update_freq=1)
    for _ in range(2):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert logged_steps(str(tmp_path)) == {(0, 1, 2, 3, 4)}


def test_callback_refuses_a_second_model(tmp_path):
    x, y = data(8)
    callback = WeightGatesCallback(log_dir=str(tmp_path))
    small_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    with pytest.raises(ValueError, match="one model per run"):
        small_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])


def test_custom_loop_functions(tmp_path):
    model = small_model()
    x, y = data(8)
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    optimizer = keras.optimizers.SGD(0.1)
    for step in range(3):
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(y, model(x, training=True))
        pairs = list(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        optimizer.apply_gradients(pairs)
        log_weights(model, step, writer, layers=["gru"], snapshot=step == 2)
        log_gradients(model, pairs, step, writer, layers=["gru"])
    writer.flush()
    stats_tags = read_logdir(str(tmp_path), metadata.PLUGIN_NAME)["train"]
    layers = {metadata.parse_stats_content(c).info.layer for c, _ in stats_tags.values()}
    assert layers == {"gru"}
    assert logged_steps(str(tmp_path), "weights") == {(0, 1, 2)}
    assert logged_steps(str(tmp_path), "gradients") == {(0, 1, 2)}
    snapshots = read_logdir(str(tmp_path), metadata.SNAPSHOT_PLUGIN_NAME)["train"]
    snapshot_steps = {
        metadata.parse_snapshot_content(content).kind: [step for step, _ in series]
        for content, series in snapshots.values()
    }
    # log_gradients snapshots by default, as log_weights does; histograms are opt-in.
    assert snapshot_steps == {"weights": [2], "gradients": [0, 1, 2]}
    assert read_logdir(str(tmp_path), "histograms") == {}
    updates = [
        metadata.parse_stats_tensor(series[-1][1], options.DEFAULT_BINS)["update_size"]
        for content, series in stats_tags.values()
        if metadata.parse_stats_content(content).kind == "weights"
    ]
    assert all(np.isfinite(u) and u > 0 for u in updates if not np.isnan(u))
    assert any(np.isfinite(u) for u in updates)
