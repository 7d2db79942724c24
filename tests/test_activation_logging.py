"""Activation records written by the real writer, read back through TensorBoard's own data
provider and compared with independent references.

* Saturation fractions and means equal a NumPy count on `gate_activations` of the same layer,
  input and mask (the input a layer sees inside the model, found by calling the layers before
  it).
* Gradient norms and maps of dL/dh_t equal a `tf.GradientTape` through a hand-unrolled copy of
  the model built from Keras' own cells (``cell(x_t, states)``), each hidden state perturbed
  by a watched zero: the total derivative through every later step, for a layer that returns
  sequences (Bidirectional) and one that does not (GRU). At the last step a layer processes,
  nothing comes later, so there it also equals the tape on the layer's outputs directly.
* Capture works in Sequential, functional, subclassed and nested models; a layer whose
  recomputation is not its own is never logged and warned about once; the callback validates
  its arguments and logs at statistics and snapshot steps.

`activation_logdir` is shared with `test_activation_reader`.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import shutil
import tempfile
import warnings

import numpy as np
import pytest
from test_reader import multiplexer_provider

tf = pytest.importorskip("tensorflow")

from tensorboard import context as tb_context  # noqa: E402

from tensorboard_plugin_weightgates import (  # noqa: E402
    WeightGatesCallback,
    gate_activations,
    log_activations,
)
from tensorboard_plugin_weightgates.backend import reader  # noqa: E402
from tensorboard_plugin_weightgates.format import metadata, snapshot  # noqa: E402

pytestmark = pytest.mark.keras

keras = tf.keras
layers = keras.layers
CTX = tb_context.RequestContext()
TIME, FEATURES = 6, 3
FIELD = {name: i for i, name in enumerate(metadata.ACTIVATION_STAT_FIELDS)}


def probe_batch(samples: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs with zero-padded steps (masked by `Masking`), their mask and targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, TIME, FEATURES)).astype(np.float32)
    if samples > 2:
        x[1, 4:] = 0.0
        x[2, :1] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    y = rng.normal(size=(samples, 1)).astype(np.float32)
    return x, mask, y


def probe_model() -> keras.Model:
    """Masking -> Bidirectional(LSTM(3), sequences) -> GRU(2) -> Dense(1)."""
    inputs = keras.Input((TIME, FEATURES))
    hidden = layers.Masking(0.0, name="masking")(inputs)
    hidden = layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bi")(hidden)
    hidden = layers.GRU(2, name="gru")(hidden)
    return keras.Model(inputs, layers.Dense(1, name="head")(hidden))


def unrolled_gradients(model: keras.Model, x, mask, y) -> dict[tuple[str, str], np.ndarray]:
    """``{(layer, direction): dL/dh_t [batch, time, units]}`` by input timestep, through a copy
    of `probe_model` unrolled by hand with Keras' own cells, the MSE loss on the probe."""
    bi, gru, head = (model.get_layer(name) for name in ("bi", "gru", "head"))
    x = tf.constant(x)
    mask = tf.constant(mask)
    batch = x.shape[0]
    perturbations = {
        ("bi", "forward"): tf.zeros([batch, TIME, 3]),
        ("bi", "backward"): tf.zeros([batch, TIME, 3]),
        ("gru", "forward"): tf.zeros([batch, TIME, 2]),
    }
    with tf.GradientTape() as tape:
        tape.watch(list(perturbations.values()))
        # Bidirectional has its layers output zeros at masked steps; a GRU of its own carries
        # its last output over them.
        forward, _ = _unroll(bi.forward_layer.cell, x, mask, perturbations["bi", "forward"])
        backward, _ = _unroll(
            bi.backward_layer.cell, x, mask, perturbations["bi", "backward"], backwards=True
        )
        sequence = tf.concat([forward, backward], axis=-1)
        _, last = _unroll(
            gru.cell, sequence, mask, perturbations["gru", "forward"], zero_output=False
        )
        loss = tf.reduce_mean(tf.square(head(last) - y))
    grads = tape.gradient(loss, list(perturbations.values()))
    return {key: np.asarray(g) for key, g in zip(perturbations, grads)}


def _unroll(cell, x, mask, perturbation, backwards=False, zero_output=True):
    """A Keras cell run step by step with masking, each step's output (and hidden state) plus
    its perturbation; at masked steps the states stay and the output is zeros or, without
    `zero_output`, the previous output."""
    batch, steps = x.shape[0], x.shape[1]
    units = perturbation.shape[-1]
    count = len(tf.nest.flatten(cell.state_size))
    states = [tf.zeros([batch, units])] * count
    emitted = tf.zeros([batch, units])
    outputs = [None] * steps
    for t in reversed(range(steps)) if backwards else range(steps):
        output, new_states = cell(x[:, t], states, training=False)
        output = output + perturbation[:, t]
        new_states = [output, *tf.nest.flatten(new_states)[1:]]
        keep = mask[:, t : t + 1]
        states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
        emitted = tf.where(keep, output, tf.zeros_like(output) if zero_output else emitted)
        outputs[t] = emitted
    return tf.stack(outputs, axis=1), emitted


@dataclasses.dataclass
class LoggedProbe:
    """A model logged by `log_activations` at some steps, with references at each step:
    `activations[step][layer]` (`gate_activations` on the layer's input inside the model) and
    `gradients[step]` (`unrolled_gradients`), and `output_gradients[step]`, the tape on the
    Bidirectional layer's output directly."""

    model: keras.Model
    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    activations: dict = dataclasses.field(default_factory=dict)
    gradients: dict = dataclasses.field(default_factory=dict)
    output_gradients: dict = dataclasses.field(default_factory=dict)


def _log_probe_run(run_dir: str) -> LoggedProbe:
    keras.utils.set_random_seed(0)
    model = probe_model()
    x, mask, y = probe_batch()
    logged = LoggedProbe(model, x, mask, y)
    writer = tf.summary.create_file_writer(run_dir)
    optimizer = keras.optimizers.SGD(0.5)
    loss = keras.losses.MeanSquaredError()
    with_outputs = keras.Model(model.inputs, [model.get_layer("bi").output, model.output])
    for step in range(3):
        log_activations(
            model, x, step, writer, y=y, loss=loss, snapshot=step != 1, activation_sample=1
        )
        bi = model.get_layer("bi")
        sequence = bi(x, mask=mask)
        logged.activations[step] = {
            "bi": gate_activations(bi, x, mask=mask),
            "gru": gate_activations(model.get_layer("gru"), sequence, mask=mask),
        }
        logged.gradients[step] = unrolled_gradients(model, x, mask, y)
        with tf.GradientTape() as tape:
            sequence, prediction = with_outputs(tf.constant(x), training=False)
            value = loss(y, prediction)
        logged.output_gradients[step] = np.asarray(tape.gradient(value, sequence))
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
    writer.close()
    return logged


def _log_stacked_run(run_dir: str) -> LoggedProbe:
    """An RNN over StackedRNNCells (LSTMCell, SimpleRNNCell) without a target: statistics and
    maps at step 5."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((TIME, FEATURES))
    cells = [layers.LSTMCell(2), layers.SimpleRNNCell(3)]
    model = keras.Model(inputs, layers.RNN(cells, return_sequences=True, name="stack")(inputs))
    x, mask, _ = probe_batch(seed=1)
    logged = LoggedProbe(model, x, np.ones_like(mask), None)
    writer = tf.summary.create_file_writer(run_dir)
    log_activations(model, x, 5, writer, histogram_bins=7)
    logged.activations[5] = {"stack": gate_activations(model.get_layer("stack"), x)}
    writer.close()
    return logged


@functools.cache
def activation_logdir() -> tuple[str, dict[str, LoggedProbe]]:
    """A logdir of two runs: ``probe`` (`probe_model`, logged with targets at steps 0, 1, 2
    with SGD steps between, maps of sample 1 at 0 and 2) and ``stacked``
    (`_log_stacked_run`). Written once per session."""
    logdir = tempfile.mkdtemp(prefix="weightgates_activations_")
    atexit.register(shutil.rmtree, logdir, ignore_errors=True)
    runs = {
        "probe": _log_probe_run(os.path.join(logdir, "probe")),
        "stacked": _log_stacked_run(os.path.join(logdir, "stacked")),
    }
    return logdir, runs


@pytest.fixture(scope="module")
def logged():
    logdir, runs = activation_logdir()
    return runs, multiplexer_provider(logdir)


def _group(provider, run, layer, direction="forward", cell=None) -> reader.ActivationGroup:
    return reader.list_activations(provider, CTX, "").group(run, (layer, cell, direction))


@pytest.mark.parametrize(
    "layer, direction, cell, run",
    [
        ("bi", "forward", None, "probe"),
        ("bi", "backward", None, "probe"),
        ("gru", "forward", None, "probe"),
        ("stack", "forward", 0, "stacked"),
        ("stack", "forward", 1, "stacked"),
    ],
)
def test_saturation_fractions_and_means_equal_a_numpy_count(logged, layer, direction, cell, run):
    runs, provider = logged
    probe = runs[run]
    group = _group(provider, run, layer, direction, cell)

    stats = reader.read_activation_stats(provider, CTX, "", group, unit_step=reader.ALL_STEPS)

    assert [n.name for n in stats.names] == list(group.info.names)
    for entry in stats.names:
        assert entry.steps.tolist() == sorted(probe.activations)
        for row, step in enumerate(entry.steps):
            values = probe.activations[int(step)][layer][(direction, cell, entry.name)]
            kept = values[probe.mask]  # [positions, units]
            _assert_counts(entry, row, kept)


def _assert_counts(entry: reader.NameStats, row: int, kept: np.ndarray) -> None:
    scalars, units = entry.scalars[row], entry.units[row]
    close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)
    close(units[metadata.ACTIVATION_UNIT_FIELDS.index("mean")], kept.mean(axis=0))
    close(scalars[FIELD["mean"]], kept.mean())
    close(scalars[FIELD["std"]], kept.std())
    assert scalars[FIELD["count"]] == kept.size
    assert scalars[FIELD["nan_count"]] == scalars[FIELD["inf_count"]] == 0
    assert entry.counts[row].sum() == kept.size
    if entry.thresholds is None:
        assert np.isnan(units[:2]).all() and np.isnan(scalars[FIELD["left_saturated"]])
        return
    low, high = entry.thresholds
    assert (low, high) == metadata.SATURATION_THRESHOLDS[entry.saturation]
    left = units[metadata.ACTIVATION_UNIT_FIELDS.index("left_saturated")]
    right = units[metadata.ACTIVATION_UNIT_FIELDS.index("right_saturated")]
    np.testing.assert_array_equal(left * len(kept), (kept < low).sum(axis=0))
    np.testing.assert_array_equal(right * len(kept), (kept > high).sum(axis=0))
    close(scalars[FIELD["left_saturated"]], (kept < low).mean())
    close(scalars[FIELD["right_saturated"]], (kept > high).mean())


def test_saturation_types_follow_the_gates(logged):
    _, provider = logged

    group = _group(provider, "probe", "bi")

    assert group.info.saturations == ("sigmoid", "sigmoid", "tanh", "sigmoid", None, "tanh")
    assert (group.info.units, group.info.spatial, group.info.timesteps) == (3, (), TIME)


@pytest.mark.parametrize(
    "layer, direction", [("bi", "forward"), ("bi", "backward"), ("gru", "forward")]
)
def test_gradient_norms_equal_a_tape_through_the_unrolled_cells(logged, layer, direction):
    runs, provider = logged
    probe = runs["probe"]

    norms = reader.read_gradient_norms(
        provider, CTX, "", _group(provider, "probe", layer, direction)
    )

    assert norms.steps.tolist() == [0, 1, 2]
    for row, step in enumerate(norms.steps):
        reference = probe.gradients[int(step)][layer, direction]
        per_sample = np.linalg.norm(reference, axis=-1)  # [batch, time]
        expected = (per_sample * probe.mask).sum(0) / probe.mask.sum(0)
        np.testing.assert_allclose(norms.norms[row], expected, rtol=1e-4, atol=1e-9)
    assert np.all(norms.norms[0] > 0)


def test_at_the_last_processed_step_the_gradient_is_the_tape_on_the_outputs(logged):
    runs, provider = logged
    probe = runs["probe"]

    forward = reader.read_gradient_norms(provider, CTX, "", _group(provider, "probe", "bi"))
    backward = reader.read_gradient_norms(
        provider, CTX, "", _group(provider, "probe", "bi", "backward")
    )

    for row, step in enumerate(forward.steps):
        direct = probe.output_gradients[int(step)]  # [batch, time, forward + backward units]
        for norms, t, units in ((forward, -1, slice(0, 3)), (backward, 0, slice(3, 6))):
            kept = probe.mask[:, t]
            expected = np.linalg.norm(direct[kept, t, units], axis=-1).mean()
            np.testing.assert_allclose(norms.norms[row, t], expected, rtol=1e-4)


def test_maps_hold_the_probe_samples_values_and_gradients(logged):
    runs, provider = logged
    probe = runs["probe"]
    group = _group(provider, "probe", "bi", "backward")

    maps = reader.read_activation_maps(provider, CTX, "", group)

    assert maps.steps == (0, 2) and maps.step == 2 and maps.sample == 1
    assert maps.names == (*group.info.names, metadata.HIDDEN_STATE_GRADIENT)
    np.testing.assert_array_equal(maps.valid, probe.mask[1].astype(np.float32))
    for i, name in enumerate(maps.names):
        if name == metadata.HIDDEN_STATE_GRADIENT:
            values = probe.gradients[2]["bi", "backward"][1].copy()
            values[~probe.mask[1]] = np.nan
        else:
            values = probe.activations[2]["bi"][("backward", None, name)][1]
        expected = snapshot.reduce_snapshot(values.T, 1 << 14)
        np.testing.assert_allclose(maps.values[i], expected, rtol=1e-4, atol=1e-8, err_msg=name)


def test_records_without_a_target_have_no_gradients(logged):
    _, provider = logged
    group = _group(provider, "stacked", "stack", cell=1)

    assert group.gradient_norms is None
    assert metadata.HIDDEN_STATE_GRADIENT not in group.maps
    with pytest.raises(reader.NotFoundError, match="no gradients through time"):
        reader.read_gradient_norms(provider, CTX, "", group)
    stats = reader.read_activation_stats(provider, CTX, "", group)
    assert stats.bins == 7 and [n.name for n in stats.names] == ["hidden_state"]


class SubclassedModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.lstm = layers.LSTM(3, return_sequences=True)
        self.head = layers.Dense(1)

    def call(self, inputs):
        return self.head(self.lstm(inputs))


def _model(kind: str) -> tuple[keras.Model, str]:
    """A model of `kind` around an LSTM, and the LSTM's path in it."""
    if kind == "sequential":
        model = keras.Sequential(
            [keras.Input((TIME, FEATURES)), layers.LSTM(3, name="lstm"), layers.Dense(1)]
        )
        return model, "lstm"
    if kind == "subclassed":
        model = SubclassedModel()
        model(np.zeros((1, TIME, FEATURES), np.float32))
        return model, model.lstm.name
    inputs = keras.Input((TIME, FEATURES))
    if kind == "functional":
        return keras.Model(inputs, layers.LSTM(3, name="lstm")(inputs)), "lstm"
    inner = keras.Sequential([keras.Input((TIME, 2)), layers.LSTM(3, name="lstm")], name="inner")
    hidden = layers.Dense(2, name="project")(inputs)
    return keras.Model(inputs, inner(hidden)), "inner/lstm"


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed", "nested"])
def test_a_layers_input_is_captured_in_every_kind_of_model(tmp_path, kind):
    keras.utils.set_random_seed(3)
    model, path = _model(kind)
    x, _, _ = probe_batch(3)
    lstm = next(layer for layer in _all_layers(model) if isinstance(layer, layers.LSTM))
    seen = model.get_layer("project")(x) if kind == "nested" else x

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_activations(model, x, 0, tf.summary.create_file_writer(str(tmp_path)), snapshot=False)

    provider = multiplexer_provider(str(tmp_path.parent))
    group = reader.list_activations(provider, CTX, "").group(tmp_path.name, (path, None, "forward"))
    stats = reader.read_activation_stats(provider, CTX, "", group, "hidden_state")
    expected = gate_activations(lstm, seen)[("forward", None, "hidden_state")]
    mean = stats.names[0].units[0, metadata.ACTIVATION_UNIT_FIELDS.index("mean")]
    np.testing.assert_allclose(mean, expected.mean(axis=(0, 1)), rtol=1e-5, atol=1e-7)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


class _HalvedLSTMCell(layers.LSTMCell):
    """An LSTM cell that halves its output: not Keras' equations."""

    def call(self, inputs, states, training=False):
        h, new_states = super().call(inputs, states, training=training)
        return h * 0.5, [h * 0.5, new_states[1]]


def test_a_layer_that_is_not_recomputed_exactly_is_warned_about_once_and_never_logged(tmp_path):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((TIME, FEATURES))
    hidden = layers.RNN(_HalvedLSTMCell(3), return_sequences=True, name="halved")(inputs)
    outputs = layers.Dense(1, name="head")(layers.GRU(2, name="gru")(hidden))
    model = keras.Model(inputs, outputs)
    x, _, y = probe_batch()
    writer = tf.summary.create_file_writer(str(tmp_path))
    loss = keras.losses.MeanSquaredError()

    with pytest.warns(UserWarning, match="'halved' differ from its own output") as caught:
        log_activations(model, x, 0, writer, y=y, loss=loss)
        log_activations(model, x, 1, writer, y=y, loss=loss)
    writer.close()

    assert len([w for w in caught if "halved" in str(w.message)]) == 1
    provider = multiplexer_provider(str(tmp_path.parent))
    groups = reader.list_activations(provider, CTX, "").groups[tmp_path.name]
    assert list(groups) == [("gru", None, "forward")]
    norms = reader.read_gradient_norms(provider, CTX, "", groups["gru", None, "forward"])
    assert norms.steps.tolist() == [0, 1] and np.isfinite(norms.norms).all()


def test_layers_it_cannot_recompute_are_named_in_a_warning(tmp_path):
    inputs = keras.Input((TIME, FEATURES), batch_size=2)
    hidden = layers.LSTM(2, stateful=True, return_sequences=True, name="stateful")(inputs)
    model = keras.Model(inputs, layers.GRU(2, name="gru")(hidden))

    with pytest.warns(UserWarning, match="'stateful' are not logged: .*stateful"):
        log_activations(model, probe_batch(2)[0], 0, tf.summary.create_file_writer(str(tmp_path)))


def test_log_activations_asks_for_a_loss_when_the_model_has_none(tmp_path):
    model, _ = _model("functional")
    x, _, y = probe_batch()
    writer = tf.summary.create_file_writer(str(tmp_path))

    with pytest.raises(ValueError, match="loss="):
        log_activations(model, x, 0, writer, y=y)
    with pytest.raises(ValueError, match="activation_sample must be an integer from 0 to 4"):
        log_activations(model, x, 0, writer, activation_sample=5)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"activations": True}, "activations=True reuses the probe batch of gradients="),
        ({"activations": ("x",)}, "a tuple of length 1"),
        ({"activations": "x"}, "activations must be None, True"),
        ({"activations": np.zeros(3)}, r"\[batch, time, ...\]"),
        ({"activations": np.zeros((2, 3, 1)), "activation_sample": 2}, "from 0 to 1"),
        ({"activations": np.zeros((2, 3, 1)), "activation_sample": True}, "activation_sample"),
    ],
)
def test_the_callback_refuses_bad_activation_arguments(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        WeightGatesCallback(log_dir=str(tmp_path), **arguments)


def test_the_callback_logs_activations_at_statistics_and_snapshot_steps(tmp_path):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((TIME, FEATURES))
    outputs = layers.Dense(1)(layers.GRU(2, name="gru")(layers.Masking(0.0)(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, mask, y = probe_batch(8)
    callback = WeightGatesCallback(
        log_dir=str(tmp_path / "run"),
        update_freq=2,
        snapshot_freq=4,
        gradients=(x[:4], y[:4]),
        activations=True,
        activation_sample=2,
    )

    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[callback])

    provider = multiplexer_provider(str(tmp_path))
    index = reader.read_activation_index(provider, CTX, "")
    assert index.errors == {}
    (entry,) = index.runs["run/train"]
    assert entry.group.info.key == ("gru", None, "forward")
    assert entry.stats_steps == (0, 2, 4)
    assert entry.gradient_steps == (2, 4)  # the compiled loss is built by the first step
    assert entry.map_steps == (0, 4)
    assert entry.group.map_names == (*entry.group.info.names, "hidden_state_gradient")
    maps = reader.read_activation_maps(provider, CTX, "", entry.group)
    assert maps.sample == 2 and maps.values.shape[2:] == (2, TIME) and maps.steps == (0, 4)
    assert maps.names[-1] == "hidden_state_gradient"
    first = reader.read_activation_maps(provider, CTX, "", entry.group, step=0)
    assert first.names == entry.group.info.names  # no gradients before the first step
    np.testing.assert_array_equal(maps.valid, mask[2].astype(np.float32))


def test_training_gradients_leave_the_activations_their_own_steps(tmp_path):
    """With gradients="train" the training step logs the weights of its logged steps itself;
    the activations of those steps are still logged, from the host."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((TIME, FEATURES))
    outputs = layers.Dense(1)(layers.LSTM(2, name="lstm")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, _, y = probe_batch(8)
    callback = WeightGatesCallback(
        log_dir=str(tmp_path / "run"),
        update_freq=2,
        snapshot_freq=None,
        gradients="train",
        activations=(x[:4], y[:4]),
    )

    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[callback])

    provider = multiplexer_provider(str(tmp_path))
    (entry,) = reader.read_activation_index(provider, CTX, "").runs["run/train"]
    (kernel, *_) = reader.read_index(provider, CTX, "").runs["run/train"]
    assert entry.stats_steps == (0, 2, 4)
    assert kernel.steps["weights"].stats_steps == (0, 2, 4)


def test_conv_lstm_statistics_and_maps_cover_every_spatial_position(tmp_path):
    keras.utils.set_random_seed(6)
    inputs = keras.Input((3, 5, 2))
    conv = layers.ConvLSTM1D(
        2, 3, padding="same", return_sequences=True, recurrent_activation="sigmoid", name="conv"
    )
    model = keras.Model(inputs, conv(inputs))
    x = np.random.default_rng(6).normal(size=(2, 3, 5, 2)).astype(np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path / "conv"))

    log_activations(model, x, 0, writer, snapshot_max_cells=6)
    writer.close()

    provider = multiplexer_provider(str(tmp_path))
    group = reader.list_activations(provider, CTX, "").group("conv", ("conv", None, "forward"))
    assert (group.info.units, group.info.spatial, group.info.timesteps) == (2, (5,), 3)
    values = gate_activations(conv, x)
    stats = reader.read_activation_stats(provider, CTX, "", group)
    for entry in stats.names:
        kept = values[("forward", None, entry.name)].reshape(-1, 2)
        _assert_counts(entry, 0, kept)
    maps = reader.read_activation_maps(provider, CTX, "", group)
    forget = values[("forward", None, "forget")][0]  # [time, spatial, units]
    matrix = forget.transpose(1, 2, 0).reshape(10, 3)
    assert maps.block == snapshot.snapshot_block((10, 3), 6)
    np.testing.assert_allclose(
        maps.values[maps.names.index("forget")], snapshot.reduce_snapshot(matrix, 6), rtol=1e-5
    )
