"""`gate_activations` against an independent NumPy recomputation from the cell equations.

Every supported layer, with masks, ``go_backwards``, initial states, stacked cells, Bidirectional
and the layer's own activation functions: the reference (`cell_equations`) looks each weight up
by (direction, cell, kernel, gate) name, so it agrees only if every gate's activations are the
gate's. The layer's own output is the third witness: its hidden states must be what Keras
returns. Runs under Keras 3 and, with ``TF_USE_LEGACY_KERAS=1``, tf-keras.
"""

from __future__ import annotations

import functools

import cell_equations as eq
import numpy as np
import pytest
import tensorflow as tf

import tensorboard_plugin_weightgates
from tensorboard_plugin_weightgates import gate_activations
from tensorboard_plugin_weightgates.format import metadata
from tensorboard_plugin_weightgates.keras_writer import gates, recurrence

pytestmark = pytest.mark.keras

keras = tf.keras
layers = keras.layers

TOLERANCE = 1e-5
BATCH, TIME, FEATURES = 3, 5, 3
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], bool)


def _inputs(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _build(layer, x, **call):
    """Builds the layer on `x` and gives it non-trivial random weights."""
    layer(x, **_tensors(call))
    rng = np.random.default_rng(2)
    layer.set_weights(
        [rng.uniform(-0.9, 0.9, w.shape).astype(np.float32) for w in layer.get_weights()]
    )
    return layer


def _tensors(kwargs: dict) -> dict:
    """Call arguments as tensors (tf-keras refuses NumPy initial states)."""
    return {k: tf.nest.map_structure(tf.convert_to_tensor, v) for k, v in kwargs.items()}


def _weights(layer, direction="forward", cell=None):
    return eq.weights_by_gate(gates.split_layer(layer), direction, cell)


def _assert_values(actual: dict, expected: dict, key_prefix: tuple) -> None:
    """Every name of `expected` (a `cell_equations.run` result) equals `actual`'s, NaN where
    masked."""
    names = [n for n in expected if n != "final_states"]
    assert sorted(k[2] for k in actual if k[:2] == key_prefix) == sorted(names)
    for name in names:
        got = actual[(*key_prefix, name)]
        assert got.shape == expected[name].shape, name
        np.testing.assert_allclose(got, expected[name], rtol=0, atol=TOLERANCE, err_msg=name)


def _reference_call(layer, x, mask, initial):
    kwargs = {"training": False}
    if mask is not None:
        kwargs["mask"] = mask
    if initial is not None:
        kwargs["initial_state"] = initial
    return layer(x, **_tensors(kwargs))


@pytest.mark.parametrize("masked", [False, True], ids=["all-steps", "masked"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "go_backwards"])
def test_lstm_gates_and_states_follow_the_equations(masked, go_backwards):
    x = _inputs(BATCH, TIME, FEATURES)
    mask = MASK if masked else None
    layer = _build(layers.LSTM(4, return_sequences=True, go_backwards=go_backwards), x)

    values = gate_activations(layer, x, mask=mask)

    expected = eq.run(eq.lstm_cell(_weights(layer)), x, mask, go_backwards=go_backwards)
    _assert_values(values, expected, ("forward", None))
    own = np.asarray(_reference_call(layer, x, mask, None))
    own = own[:, ::-1] if go_backwards else own  # Keras returns processing order
    valid = np.ones((BATCH, TIME), bool) if mask is None else mask
    hidden = values[("forward", None, "hidden_state")]
    np.testing.assert_allclose(hidden[valid], own[valid], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_follow_the_equations_with_mask_and_initial_state(reset_after):
    x = _inputs(BATCH, TIME, FEATURES)
    initial = [_inputs(BATCH, 2, seed=5)]
    layer = _build(layers.GRU(2, reset_after=reset_after), x)

    values = gate_activations(layer, x, mask=MASK, initial_state=initial)

    expected = eq.run(eq.gru_cell(_weights(layer)), x, MASK, initial)
    _assert_values(values, expected, ("forward", None))
    own = np.asarray(_reference_call(layer, x, MASK, initial))
    np.testing.assert_allclose(own, expected["final_states"][0], rtol=0, atol=TOLERANCE)


def test_simple_rnn_has_only_a_hidden_state_and_uses_its_own_activation():
    x = _inputs(BATCH, TIME, FEATURES)
    layer = _build(layers.SimpleRNN(3, activation="relu", return_sequences=True), x)

    values = gate_activations(layer, x)

    relu = functools.partial(np.maximum, 0.0)
    expected = eq.run(eq.simple_rnn_cell(_weights(layer), activation=relu), x)
    _assert_values(values, expected, ("forward", None))


def test_custom_activations_are_the_layers_own():
    x = _inputs(BATCH, TIME, FEATURES)
    layer = _build(layers.LSTM(3, activation="softsign", recurrent_activation="hard_sigmoid"), x)
    keras_hard_sigmoid = layer.cell.recurrent_activation

    values = gate_activations(layer, x)

    def hard_sigmoid(z):
        return np.asarray(keras_hard_sigmoid(tf.constant(z, tf.float32)), np.float64)

    step = eq.lstm_cell(
        _weights(layer),
        activation=lambda z: z / (1.0 + np.abs(z)),
        recurrent_activation=hard_sigmoid,
    )
    _assert_values(values, eq.run(step, x), ("forward", None))


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
def test_bidirectional_directions_are_indexed_by_input_timestep(cell, merge_mode):
    x = _inputs(BATCH, TIME, FEATURES)
    inner = getattr(layers, cell)(3, return_sequences=True)
    layer = _build(layers.Bidirectional(inner, merge_mode=merge_mode), x)
    make = eq.lstm_cell if cell == "LSTM" else eq.gru_cell

    values = gate_activations(layer, x, mask=MASK)

    for direction in ("forward", "backward"):
        step = make(_weights(layer, direction))
        expected = eq.run(step, x, MASK, go_backwards=direction == "backward")
        _assert_values(values, expected, (direction, None))


def test_bidirectional_initial_states_split_forward_then_backward():
    x = _inputs(BATCH, TIME, FEATURES)
    states = [_inputs(BATCH, 2, seed=s) for s in (5, 6, 7, 8)]
    layer = _build(layers.Bidirectional(layers.LSTM(2)), x, initial_state=states)

    values = gate_activations(layer, x, initial_state=states)

    forward = eq.run(eq.lstm_cell(_weights(layer, "forward")), x, None, states[:2])
    backward = eq.run(
        eq.lstm_cell(_weights(layer, "backward")), x, None, states[2:], go_backwards=True
    )
    _assert_values(values, forward, ("forward", None))
    _assert_values(values, backward, ("backward", None))


def _convolution(x, kernel, strides, padding):
    return tf.nn.convolution(
        tf.constant(x), tf.constant(kernel), strides=strides, padding=padding.upper()
    ).numpy()


@pytest.mark.parametrize(
    "layer_class, input_shape, kernel_size, strides, padding",
    [
        ("ConvLSTM1D", (6, 2), 3, 2, "same"),
        ("ConvLSTM2D", (5, 4, 2), (2, 2), (2, 1), "valid"),
        ("ConvLSTM3D", (3, 3, 3, 1), 2, 1, "valid"),
    ],
)
def test_conv_lstm_values_are_batch_time_spatial_filters(
    layer_class, input_shape, kernel_size, strides, padding
):
    x = _inputs(2, 3, *input_shape)
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    layer = _build(
        getattr(layers, layer_class)(
            2, kernel_size, strides=strides, padding=padding, recurrent_activation="sigmoid"
        ),
        x,
    )
    rank = len(input_shape) - 1
    stride_list = [strides] * rank if isinstance(strides, int) else list(strides)

    values = gate_activations(layer, x, mask=mask)

    step = eq.lstm_cell(
        _weights(layer),
        project_input=functools.partial(_convolution, strides=stride_list, padding=padding),
        project_state=functools.partial(_convolution, strides=[1] * rank, padding="same"),
    )
    expected = eq.run(step, x, mask)
    _assert_values(values, expected, ("forward", None))
    own = np.asarray(layer(x, mask=mask))
    assert values[("forward", None, "hidden_state")].shape == (2, 3, *own.shape[1:])


def test_rnn_of_a_cell_and_stacked_cells_are_logged_per_cell():
    x = _inputs(BATCH, TIME, FEATURES)
    layer = _build(layers.RNN([layers.LSTMCell(3), layers.GRUCell(2)], return_sequences=True), x)

    values = gate_activations(layer, x, mask=MASK)

    first = eq.run(eq.lstm_cell(_weights(layer, cell=0)), x, MASK)
    second = eq.run(
        eq.gru_cell(_weights(layer, cell=1)), np.nan_to_num(first["hidden_state"]), MASK
    )
    _assert_values(values, first, ("forward", 0))
    _assert_values(values, second, ("forward", 1))


def test_a_cell_that_changes_the_equations_is_refused():
    class LeakyLSTMCell(layers.LSTMCell):
        def call(self, inputs, states, training=False):
            h, new_states = super().call(inputs, states, training=training)
            return h * 0.5, [h * 0.5, new_states[1]]

    x = _inputs(BATCH, TIME, FEATURES)
    layer = _build(layers.RNN(LeakyLSTMCell(3), return_sequences=True), x)

    with pytest.raises(recurrence.RecomputationMismatch, match=layer.name):
        gate_activations(layer, x)


def test_layers_it_cannot_recompute_are_refused_with_the_reason():
    x = _inputs(BATCH, TIME, FEATURES)
    with pytest.raises(ValueError, match="not a recurrent layer"):
        gate_activations(layers.Dense(2), x)
    stateful = layers.LSTM(2, stateful=True)
    stateful(x)
    with pytest.raises(recurrence.UnsupportedLayer, match="stateful"):
        gate_activations(stateful, x)


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("sigmoid", metadata.SIGMOID),
        ("hard_sigmoid", metadata.SIGMOID),
        ("tanh", metadata.TANH),
        ("softsign", metadata.TANH),
        ("relu", None),
        ("linear", None),
    ],
)
def test_saturation_type_comes_from_the_activations_range(activation, expected):
    assert recurrence.saturation_type(keras.activations.get(activation)) == expected


def test_saturation_types_per_name():
    lstm = layers.LSTM(2)
    lstm(_inputs(1, 2, 3))
    relu_gru = layers.GRU(2, activation="relu")
    relu_gru(_inputs(1, 2, 3))

    (lstm_cell,) = recurrence.describe(lstm).cells
    (gru_cell,) = recurrence.describe(relu_gru).cells

    assert dict(zip(lstm_cell.names, lstm_cell.saturations)) == {
        "input": "sigmoid",
        "forget": "sigmoid",
        "cell": "tanh",
        "output": "sigmoid",
        "cell_state": None,
        "hidden_state": "tanh",
    }
    assert dict(zip(gru_cell.names, gru_cell.saturations)) == {
        "update": "sigmoid",
        "reset": "sigmoid",
        "candidate": None,
        "hidden_state": None,
    }


def test_the_package_resolves_activations_lazily():
    module = tensorboard_plugin_weightgates.activations

    assert module.gate_activations is gate_activations
    assert module.log_activations is tensorboard_plugin_weightgates.log_activations


@pytest.mark.parametrize("max_cells", [35, 12, 6, 1])
def test_maps_are_block_reduced_on_the_device_as_snapshots_are(max_cells):
    from tensorboard_plugin_weightgates.format import snapshot
    from tensorboard_plugin_weightgates.keras_writer import activation_stats

    values = np.random.default_rng(7).normal(size=(2, 7, 5)).astype(np.float32)
    values[0, 0, 0] = np.nan
    values[0, 6, 4] = np.inf
    values[1, 3, 1], values[1, 3, 2] = np.inf, -np.inf
    block = snapshot.snapshot_block((7, 5), max_cells)

    reduced = np.asarray(activation_stats.reduce_blocks(tf.constant(values), block))

    for name in range(2):
        expected = snapshot.reduce_snapshot(values[name], max_cells)
        np.testing.assert_allclose(reduced[name], expected, rtol=1e-6, equal_nan=True)
