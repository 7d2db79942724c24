"""Gate slices reproduce each layer's own output, and cover every weight of a model.

The reconstructions look every weight up by (direction, cell, kernel, gate) name and run the
NumPy equations of `cell_equations`: they pass only if each slice holds the columns of the
gate it is named after. Runs under Keras 3 and, with ``TF_USE_LEGACY_KERAS=1``, tf-keras.
"""

from __future__ import annotations

import functools

import cell_equations as eq
import numpy as np
import pytest
import tensorflow as tf

from tensorboard_plugin_weightgates.keras_writer import gates

pytestmark = pytest.mark.keras

keras = tf.keras
layers = keras.layers

TOLERANCE = 1e-5
BATCH, TIME, FEATURES = 2, 5, 3


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _inputs(*shape: int, seed: int = 1) -> np.ndarray:
    return _rng(seed).normal(size=shape).astype(np.float32)


def _randomize(layer, seed: int = 2) -> None:
    """Replaces every weight (biases included) with non-trivial random values."""
    rng = _rng(seed)
    layer.set_weights(
        [rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()]
    )


def _run(layer, x: np.ndarray):
    """Builds the layer on `x`, randomizes its weights and returns its output as NumPy."""
    layer(x)
    _randomize(layer)
    output = layer(x)
    if isinstance(output, (list, tuple)):
        return [np.asarray(o) for o in output]
    return np.asarray(output)


def _assert_close(actual, expected) -> None:
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_close(a, e)
        return
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


def _kernel_gates(slices) -> dict[tuple, list]:
    """Gate names of each (direction, cell, kernel), in slice order."""
    found: dict[tuple, list] = {}
    for piece in slices:
        found.setdefault((piece.direction, piece.cell, piece.kernel), []).append(piece.gate)
    return found


def test_lstm_gates_reproduce_output():
    layer = layers.LSTM(4, return_sequences=True)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert _kernel_gates(slices) == {
        ("forward", None, kernel): list(gates.LSTM_GATES)
        for kernel in ("kernel", "recurrent_kernel", "bias")
    }
    assert {(s.layer, s.layer_type, s.order) for s in slices} == {(layer.name, "LSTM", 0)}
    assert [s.index for s in slices if s.kernel == "kernel"] == [
        (Ellipsis, slice(0, 4)),
        (Ellipsis, slice(4, 8)),
        (Ellipsis, slice(8, 12)),
        (Ellipsis, slice(12, 16)),
    ]
    _assert_close(output, eq.lstm(x, eq.weights_by_gate(slices)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_reproduce_output(reset_after):
    layer = layers.GRU(3, return_sequences=True, reset_after=reset_after)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    biases = ("input_bias", "recurrent_bias") if reset_after else ("bias",)
    assert _kernel_gates(slices) == {
        ("forward", None, kernel): list(gates.GRU_GATES)
        for kernel in ("kernel", "recurrent_kernel", *biases)
    }
    thirds = [slice(0, 3), slice(3, 6), slice(6, 9)]
    expected_index = {
        "input_bias": [(0, part) for part in thirds],
        "recurrent_bias": [(1, part) for part in thirds],
        "bias": [(Ellipsis, part) for part in thirds],
    }
    for kernel in biases:
        assert [s.index for s in slices if s.kernel == kernel] == expected_index[kernel]
    _assert_close(output, eq.gru(x, eq.weights_by_gate(slices)))


def test_simple_rnn_is_one_slice_per_kernel():
    layer = layers.SimpleRNN(3, return_sequences=True)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert [(s.kernel, s.gate, s.gates, s.index) for s in slices] == [
        (kernel, None, (None,), (Ellipsis,)) for kernel in ("kernel", "recurrent_kernel", "bias")
    ]
    assert {s.layer_type for s in slices} == {"SimpleRNN"}
    _assert_close(output, eq.simple_rnn(x, eq.weights_by_gate(slices)))


_CELLS = {"LSTM": (layers.LSTM, eq.lstm), "GRU": (layers.GRU, eq.gru)}


@pytest.mark.parametrize(
    "kind, merge_mode",
    [
        ("LSTM", "concat"),
        ("LSTM", "sum"),
        ("LSTM", None),
        ("LSTM", "ave"),
        ("GRU", "concat"),
        ("GRU", "sum"),
        ("GRU", None),
        ("GRU", "mul"),
    ],
)
def test_bidirectional_directions_reproduce_output(kind, merge_mode):
    layer_class, cell = _CELLS[kind]
    layer = layers.Bidirectional(layer_class(3, return_sequences=True), merge_mode=merge_mode)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {(s.layer, s.layer_type) for s in slices} == {(layer.name, kind)}
    half = len(slices) // 2
    assert [s.direction for s in slices] == ["forward"] * half + ["backward"] * half
    forward = cell(x, eq.weights_by_gate(slices, "forward"))
    backward = eq.backward(cell, x, eq.weights_by_gate(slices, "backward"))
    _assert_close(output, eq.merge(forward, backward, merge_mode))


def test_bidirectional_custom_backward_layer_keeps_its_own_type():
    layer = layers.Bidirectional(
        layers.LSTM(3, return_sequences=True),
        backward_layer=layers.GRU(2, return_sequences=True, go_backwards=True, reset_after=False),
    )
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {(s.direction, s.layer_type) for s in slices} == {
        ("forward", "LSTM"),
        ("backward", "GRU"),
    }
    forward = eq.lstm(x, eq.weights_by_gate(slices, "forward"))
    backward = eq.backward(eq.gru, x, eq.weights_by_gate(slices, "backward"))
    _assert_close(output, eq.merge(forward, backward, "concat"))


def _convolution(x: np.ndarray, kernel: np.ndarray, strides, padding: str) -> np.ndarray:
    return tf.nn.convolution(
        tf.constant(x), tf.constant(kernel), strides=strides, padding=padding.upper()
    ).numpy()


@pytest.mark.parametrize(
    "layer_class, input_shape, kernel_size, strides, padding",
    [
        ("ConvLSTM1D", (6, 2), 3, 1, "same"),
        ("ConvLSTM2D", (5, 4, 2), (2, 2), (2, 1), "valid"),
        ("ConvLSTM3D", (3, 3, 3, 1), 2, 1, "valid"),
    ],
)
def test_conv_lstm_gates_reproduce_output(layer_class, input_shape, kernel_size, strides, padding):
    layer = getattr(layers, layer_class)(
        2,
        kernel_size,
        strides=strides,
        padding=padding,
        recurrent_activation="sigmoid",  # tf-keras' ConvLSTM default is hard_sigmoid
        return_sequences=True,
    )
    x = _inputs(BATCH, 3, *input_shape)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {s.layer_type for s in slices} == {layer_class}
    for piece in slices:
        assert piece.index[-1] == slice(piece.gate_index * 2, piece.gate_index * 2 + 2)
    rank = len(input_shape) - 1
    stride_list = [strides] * rank if isinstance(strides, int) else list(strides)
    expected = eq.lstm(
        x,
        eq.weights_by_gate(slices),
        project_input=functools.partial(_convolution, strides=stride_list, padding=padding),
        project_state=functools.partial(_convolution, strides=[1] * rank, padding="same"),
    )
    _assert_close(output, expected)


def test_rnn_of_a_cell_takes_the_cell_type():
    layer = layers.RNN(layers.LSTMCell(3), return_sequences=True)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {(s.layer_type, s.cell) for s in slices} == {("LSTMCell", None)}
    _assert_close(output, eq.lstm(x, eq.weights_by_gate(slices)))


@pytest.mark.parametrize("as_list", [False, True], ids=["StackedRNNCells", "list"])
def test_stacked_cells_are_numbered(as_list):
    cells = [layers.LSTMCell(3), layers.GRUCell(2)]
    layer = layers.RNN(cells if as_list else layers.StackedRNNCells(cells), return_sequences=True)
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {(s.cell, s.layer_type) for s in slices} == {(0, "LSTMCell"), (1, "GRUCell")}
    hidden = eq.lstm(x, eq.weights_by_gate(slices, cell=0))
    _assert_close(output, eq.gru(hidden, eq.weights_by_gate(slices, cell=1)))


def test_time_distributed_dense_is_split_through_the_inner_layer():
    layer = layers.TimeDistributed(layers.Dense(2))
    x = _inputs(BATCH, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert [(s.layer, s.layer_type, s.kernel, s.gate) for s in slices] == [
        (layer.name, "Dense", "kernel", None),
        (layer.name, "Dense", "bias", None),
    ]
    w = eq.weights_by_gate(slices)
    _assert_close(output, x @ w["kernel"][None] + w["bias"][None])


def test_time_distributed_gru_reproduces_output():
    layer = layers.TimeDistributed(layers.GRU(2, return_sequences=True))
    x = _inputs(BATCH, 2, TIME, FEATURES)
    output = _run(layer, x)
    slices = gates.split_layer(layer)
    assert {s.layer_type for s in slices} == {"GRU"}
    w = eq.weights_by_gate(slices)
    expected = np.stack([eq.gru(x[:, outer], w) for outer in range(x.shape[1])], axis=1)
    _assert_close(output, expected)


def _nested_model():
    """A Sequential (LSTM, Dense) inside a Functional model, then a weightless layer and a GRU."""
    encoder = keras.Sequential(
        [layers.LSTM(3, return_sequences=True, name="lstm"), layers.Dense(2, name="dense")],
        name="encoder",
    )
    inputs = keras.Input((TIME, FEATURES))
    hidden = layers.Activation("linear", name="identity")(encoder(inputs))
    outputs = layers.GRU(2, return_sequences=True, name="head")(hidden)
    return keras.Model(inputs, outputs)


def test_nested_model_paths_order_and_output():
    model = _nested_model()
    _randomize(model)
    x = _inputs(BATCH, TIME, FEATURES)
    output = np.asarray(model(x))
    slices = gates.split_model(model)
    assert sorted({(s.order, s.layer, s.layer_type) for s in slices}) == [
        (0, "encoder/lstm", "LSTM"),
        (1, "encoder/dense", "Dense"),
        (2, "head", "GRU"),
    ]
    by_layer = {path: [s for s in slices if s.layer == path] for path in ("encoder/lstm", "head")}
    dense = eq.weights_by_gate(s for s in slices if s.layer == "encoder/dense")
    hidden = eq.lstm(x, eq.weights_by_gate(by_layer["encoder/lstm"]))
    hidden = hidden @ dense["kernel"][None] + dense["bias"][None]
    _assert_close(output, eq.gru(hidden, eq.weights_by_gate(by_layer["head"])))


@pytest.fixture(scope="module")
def mixed_model():
    """Every supported kind of layer, plus non-recurrent ones, in one model (read only)."""
    tokens = keras.Input((TIME,), dtype="int32")
    x = layers.Embedding(7, FEATURES, name="embedding")(tokens)
    x = keras.Sequential(
        [layers.Bidirectional(layers.GRU(2, return_sequences=True), name="bigru")], name="inner"
    )(x)
    x = layers.RNN(
        [layers.LSTMCell(2), layers.SimpleRNNCell(2)], return_sequences=True, name="stack"
    )(x)
    x = layers.TimeDistributed(layers.Dense(3), name="spread")(x)
    x = layers.MultiHeadAttention(2, 2, name="attention")(x, x)
    x = layers.BatchNormalization(name="norm")(x)
    x = layers.Reshape((TIME, 3, 1))(x)
    x = layers.ConvLSTM1D(2, 2, return_sequences=True, name="convlstm")(x)
    x = layers.Conv2D(1, 1, use_bias=False, name="conv")(x)
    model = keras.Model(tokens, x)
    _randomize(model)
    return model


def test_slices_partition_every_weight_of_the_model(mixed_model):
    slices = gates.split_model(mixed_model)
    assert {id(s.variable) for s in slices} == {id(v) for v in mixed_model.weights}
    for variable in mixed_model.weights:
        own = [s for s in slices if s.variable is variable]
        value = np.asarray(variable)
        covered = np.zeros(value.shape, dtype=int)
        rebuilt = np.zeros_like(value)
        for piece in own:
            covered[piece.index] += 1
            permutation = piece.view.permutation
            unpermuted = (
                piece.values
                if permutation is None
                else piece.values.transpose(np.argsort(permutation))
            )
            rebuilt[piece.index] = unpermuted
            assert piece.shape == piece.values.shape
            assert piece.variable_shape == value.shape
        assert (covered == 1).all()
        np.testing.assert_array_equal(rebuilt, value)


def test_gates_of_a_kernel_are_equal_blocks_of_the_kernel_view(mixed_model):
    """What the statistics rely on: the kernel view holds the gates as equal contiguous blocks
    of its last axis, in gate order, on the host and as a tensor; for a recurrent kernel that
    view is the variable itself (or its row), in storage order."""
    kernels: dict[tuple, list] = {}
    for piece in gates.split_model(mixed_model):
        kernels.setdefault(piece.key, []).append(piece)
    for group in kernels.values():
        assert [s.gate for s in group] == list(group[0].gates)
        assert [s.gate_index for s in group] == list(range(len(group)))
        value = np.asarray(group[0].variable)
        gate_values = np.concatenate([s.values for s in group], axis=-1)
        np.testing.assert_array_equal(group[0].select_kernel(value), gate_values)
        traced = group[0].select_kernel(tf.convert_to_tensor(group[0].variable))
        np.testing.assert_array_equal(traced.numpy(), gate_values)
        if group[0].layer_type != "MultiHeadAttention":
            np.testing.assert_array_equal(gate_values, value[group[0].index[0]])


def test_non_gated_layers_name_each_variable_relative_to_the_layer(mixed_model):
    slices = gates.split_model(mixed_model)
    non_gated = {
        (s.layer, s.kernel): (s.layer_type, s.trainable, s.index, s.gates, s.gate_index)
        for s in slices
        if s.layer in ("embedding", "norm", "conv")
    }
    assert {key: value[:2] for key, value in non_gated.items()} == {
        ("embedding", "embeddings"): ("Embedding", True),
        ("norm", "gamma"): ("BatchNormalization", True),
        ("norm", "beta"): ("BatchNormalization", True),
        ("norm", "moving_mean"): ("BatchNormalization", False),
        ("norm", "moving_variance"): ("BatchNormalization", False),
        ("conv", "kernel"): ("Conv2D", True),
    }
    assert {value[2:] for value in non_gated.values()} == {((Ellipsis,), (None,), 0)}


def test_mixed_model_layer_types_directions_and_cells(mixed_model):
    slices = gates.split_model(mixed_model)
    rows = {(s.order, s.layer_type, s.direction, s.cell) for s in slices}
    layer_of_order = dict(sorted({(s.order, s.layer) for s in slices}))
    assert list(layer_of_order.values())[:2] == ["embedding", "inner/bigru"]
    assert {row[1:] for row in rows if row[0] == 1} == {
        ("GRU", "forward", None),
        ("GRU", "backward", None),
    }
    assert {row[1:] for row in rows if row[0] == 2} == {
        ("LSTMCell", "forward", 0),
        ("SimpleRNNCell", "forward", 1),
    }
    assert list(layer_of_order) == list(range(len(layer_of_order)))


def test_index_reads_the_same_on_variable_tensor_and_in_tf_function():
    layer = layers.GRU(2)
    layer(_inputs(BATCH, TIME, FEATURES))
    _randomize(layer)
    slices = gates.split_layer(layer)

    @tf.function
    def read_all():
        return [piece.variable[piece.index] for piece in slices]

    for piece, traced in zip(slices, read_all()):
        np.testing.assert_array_equal(
            tf.convert_to_tensor(piece.variable)[piece.index], piece.values
        )
        np.testing.assert_array_equal(traced.numpy(), piece.values)


def test_values_are_read_at_each_access():
    layer = layers.LSTM(2)
    layer(_inputs(BATCH, TIME, FEATURES))
    piece = gates.split_layer(layer)[1]
    layer.set_weights([np.full(w.shape, 0.5, np.float32) for w in layer.get_weights()])
    assert piece.gate == "forget"
    np.testing.assert_array_equal(piece.values, np.full((FEATURES, 2), 0.5, np.float32))


def test_unbuilt_layer_has_no_slices():
    assert gates.split_layer(layers.Bidirectional(layers.LSTM(2))) == []


def test_repeated_variable_names_get_unique_kernel_names():
    class TwoOfAKind(layers.Layer):
        def build(self, input_shape):
            self.first = self.add_weight(name="w", shape=(2,))
            self.second = self.add_weight(name="w", shape=(3,))

        def call(self, inputs):
            return inputs

    layer = TwoOfAKind()
    layer(_inputs(1, 2))
    assert [(s.kernel, s.shape) for s in gates.split_layer(layer)] == [("w", (2,)), ("w_1", (3,))]


def test_a_wrapper_s_own_weights_are_logged_with_the_wrapped_layer():
    class Scaled(layers.Wrapper):
        def build(self, input_shape):
            super().build(input_shape)
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

        def call(self, inputs):
            return self.scale * self.layer(inputs)

    layer = Scaled(layers.LSTM(2))
    layer(_inputs(BATCH, TIME, FEATURES))
    slices = gates.split_layer(layer)
    assert {id(s.variable) for s in slices} == {id(v) for v in layer.weights}
    assert {(s.layer_type, s.kernel, s.gate, s.shape) for s in slices if s.gate is None} == {
        ("Scaled", "scale", None, ())
    }
    assert {s.layer_type for s in slices if s.gate is not None} == {"LSTM"}


def test_slices_are_hashable_and_distinct(mixed_model):
    slices = gates.split_model(mixed_model)
    assert len(set(slices)) == len(slices)


def test_layer_shared_by_two_nested_models_is_logged_once():
    shared = layers.Dense(FEATURES, name="shared")
    first = keras.Sequential([shared], name="first")
    second = keras.Sequential([shared], name="second")
    inputs = keras.Input((FEATURES,))
    model = keras.Model(inputs, second(first(inputs)))
    assert {(s.layer, s.order) for s in gates.split_model(model)} == {("first/shared", 0)}


def _layers_of(slices) -> list[str]:
    return list(dict.fromkeys(s.layer for s in slices))


@pytest.mark.parametrize(
    "selection, expected",
    [
        (["norm"], ["norm"]),
        (["inner/bigru", "conv"], ["inner/bigru", "conv"]),
        (["inner"], ["inner/bigru"]),
        (["bigru"], ["inner/bigru"]),
        ([layers.GRU], ["inner/bigru"]),
        ([layers.Dense], ["spread"]),
        ([layers.LSTMCell, "embedding"], ["embedding", "stack"]),
        ([keras.Sequential], ["inner/bigru"]),
    ],
)
def test_layers_filter_by_name_and_class(selection, expected, mixed_model):
    slices = gates.split_model(mixed_model, layers=selection)
    assert _layers_of(slices) == expected
    assert [s.order for s in slices] == [expected.index(s.layer) for s in slices]


def test_layers_filter_rejects_names_that_select_nothing(mixed_model):
    with pytest.raises(ValueError, match=r"\['lstm'\] select no layer.*inner/bigru"):
        gates.split_model(mixed_model, layers=["embedding", "lstm"])


@pytest.mark.parametrize("selection", [[3], [], [""], 3, {"embedding": 1}])
def test_layers_filter_rejects_malformed_arguments(selection):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="embedding")])
    with pytest.raises(ValueError, match="layers"):
        gates.split_model(model, layers=selection)


@pytest.mark.parametrize("selection", ["embedding", layers.Dense])
def test_layers_filter_takes_a_single_name_or_class(selection):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="embedding")])
    assert _layers_of(gates.split_model(model, layers=selection)) == ["embedding"]


def test_split_layer_and_split_model_refuse_the_other_kind():
    model = keras.Sequential([layers.Dense(2)])
    with pytest.raises(TypeError, match="split_model"):
        gates.split_layer(model)
    with pytest.raises(TypeError, match="split_layer"):
        gates.split_model(layers.Dense(2))


def _head_slices(slices, kernel):
    return [s for s in slices if s.kernel == kernel]


@pytest.mark.parametrize(
    "options",
    [{}, {"value_dim": 3, "output_shape": 5}, {"use_bias": False}],
    ids=["defaults", "value_dim_and_output_shape", "no_bias"],
)
def test_multi_head_attention_heads_reproduce_output(options):
    layer = layers.MultiHeadAttention(num_heads=3, key_dim=2, **options)
    query, value = _inputs(BATCH, TIME, FEATURES), _inputs(BATCH, 4, FEATURES, seed=3)
    layer(query, value)
    _randomize(layer)
    output = np.asarray(layer(query, value))
    slices = gates.split_layer(layer)
    heads = ["head_0", "head_1", "head_2"]
    expected_kernels = {
        **{(f"{p}/kernel", None): heads for p in ("query", "key", "value")},
        ("attention_output/kernel", None): heads,
    }
    if options.get("use_bias", True):
        expected_kernels.update({(f"{p}/bias", None): heads for p in ("query", "key", "value")})
        expected_kernels[("attention_output/bias", None)] = [None]
    found = {(kernel, cell): names for (_, cell, kernel), names in _kernel_gates(slices).items()}
    assert found == expected_kernels
    _assert_close(output, eq.attention(query, value, eq.weights_by_gate(slices)))


def test_attention_heads_are_read_from_their_axis():
    """Query, key and value heads are the second axis of their kernel and the first of their
    bias; the output kernel's heads are its first axis, each shown transposed: a row per output
    unit, a column per head_dim component."""
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=(4, 5))
    x = _inputs(BATCH, TIME, FEATURES)
    layer(x, x)
    _randomize(layer)
    slices = gates.split_layer(layer)
    variables = {s.kernel: np.asarray(s.variable) for s in slices}
    for h, head in enumerate(_head_slices(slices, "query/kernel")):
        np.testing.assert_array_equal(head.values, variables["query/kernel"][:, h, :])
        assert (head.gate, head.axes, head.shape) == (f"head_{h}", ("input", "head_dim"), (3, 3))
    for h, head in enumerate(_head_slices(slices, "value/bias")):
        np.testing.assert_array_equal(head.values, variables["value/bias"][h])
        assert (head.axes, head.variable_shape) == (("head_dim",), (2, 3))
    for h, head in enumerate(_head_slices(slices, "attention_output/kernel")):
        np.testing.assert_array_equal(
            head.values, np.moveaxis(variables["attention_output/kernel"][h], 0, -1)
        )
        assert head.axes == ("output_0", "output_1", "head_dim")
        assert (head.shape, head.variable_shape) == ((4, 5, 3), (2, 3, 4, 5))
    (bias,) = _head_slices(slices, "attention_output/bias")
    assert (bias.gates, bias.axes, bias.shape) == ((None,), ("output_0", "output_1"), (4, 5))


@pytest.mark.skipif(
    not hasattr(layers, "GroupQueryAttention"), reason="GroupQueryAttention is Keras 3's"
)
@pytest.mark.parametrize("use_gate", [False, True])
def test_group_query_attention_heads_reproduce_output(use_gate):
    options = {"use_gate": True} if use_gate else {}
    if use_gate and "use_gate" not in layers.GroupQueryAttention.__init__.__code__.co_varnames:
        pytest.skip("this Keras' GroupQueryAttention has no use_gate")
    layer = layers.GroupQueryAttention(
        head_dim=2, num_query_heads=4, num_key_value_heads=2, **options
    )
    query, value = _inputs(BATCH, TIME, FEATURES), _inputs(BATCH, 4, FEATURES, seed=3)
    layer(query, value)
    _randomize(layer)
    output = np.asarray(layer(query, value))
    slices = gates.split_layer(layer)
    found = {kernel: names for (_, _, kernel), names in _kernel_gates(slices).items()}
    query_heads, kv_heads = [f"head_{h}" for h in range(4)], ["head_0", "head_1"]
    for kernel in ("query/kernel", "query/bias", "attention_output/kernel"):
        assert found[kernel] == query_heads
    for kernel in ("key/kernel", "key/bias", "value/kernel", "value/bias"):
        assert found[kernel] == kv_heads
    if use_gate:
        assert found["gate/kernel"] == query_heads
    assert found["attention_output/bias"] == [None]
    _assert_close(output, eq.attention(query, value, eq.weights_by_gate(slices)))


def _axes(slices) -> dict[str, tuple]:
    return {s.kernel: s.axes for s in slices}


@pytest.mark.parametrize(
    "make, x_shape, expected",
    [
        (
            lambda: layers.LSTM(2),
            (BATCH, TIME, FEATURES),
            {
                "kernel": ("input", "unit"),
                "recurrent_kernel": ("hidden", "unit"),
                "bias": ("unit",),
            },
        ),
        (
            lambda: layers.GRU(2),
            (BATCH, TIME, FEATURES),
            {
                "kernel": ("input", "unit"),
                "recurrent_kernel": ("hidden", "unit"),
                "input_bias": ("unit",),
                "recurrent_bias": ("unit",),
            },
        ),
        (
            lambda: layers.ConvLSTM2D(2, (3, 2)),
            (BATCH, 2, 5, 4, 3),
            {
                "kernel": ("offset_0", "offset_1", "input_channel", "unit"),
                "recurrent_kernel": ("offset_0", "offset_1", "hidden_channel", "unit"),
                "bias": ("unit",),
            },
        ),
        (
            lambda: layers.Conv1D(2, 3),
            (BATCH, TIME, FEATURES),
            {"kernel": ("offset_0", "input_channel", "unit"), "bias": ("unit",)},
        ),
        (
            lambda: layers.Conv2DTranspose(2, 3),
            (BATCH, 4, 4, FEATURES),
            {"kernel": ("axis_0", "axis_1", "axis_2", "unit"), "bias": ("unit",)},
        ),
        (
            lambda: layers.Dense(2),
            (BATCH, FEATURES),
            {"kernel": ("input", "unit"), "bias": ("unit",)},
        ),
        (
            lambda: layers.LayerNormalization(),
            (BATCH, FEATURES),
            {"gamma": ("unit",), "beta": ("unit",)},
        ),
    ],
    ids=["LSTM", "GRU", "ConvLSTM2D", "Conv1D", "Conv2DTranspose", "Dense", "LayerNormalization"],
)
def test_axes_say_what_rows_and_columns_are(make, x_shape, expected):
    layer = make()
    layer(_inputs(*x_shape))
    slices = gates.split_layer(layer)
    assert _axes(slices) == expected
    for piece in slices:
        assert len(piece.axes) == len(piece.shape)


def test_embedding_rows_are_tokens():
    layer = layers.Embedding(7, 3)
    layer(np.zeros((1, 2), "int32"))
    assert _axes(gates.split_layer(layer)) == {"embeddings": ("token", "unit")}


def test_kernels_are_numbered_in_storage_order_and_directions_flagged():
    layer = layers.Bidirectional(layers.GRU(2, return_sequences=True))
    layer(_inputs(BATCH, TIME, FEATURES))
    slices = gates.split_layer(layer)
    order = dict.fromkeys((s.direction, s.kernel, s.kernel_order) for s in slices)
    kernels = ("kernel", "recurrent_kernel", "input_bias", "recurrent_bias")
    assert list(order) == [
        (direction, kernel, position)
        for position, (direction, kernel) in enumerate(
            (d, k) for d in ("forward", "backward") for k in kernels
        )
    ]
    assert {s.bidirectional for s in slices} == {True}
    plain = layers.LSTM(2)
    plain(_inputs(BATCH, TIME, FEATURES))
    assert {(s.direction, s.bidirectional) for s in gates.split_layer(plain)} == {
        ("forward", False)
    }
