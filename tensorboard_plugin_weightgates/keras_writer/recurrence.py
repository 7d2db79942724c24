"""Keras' recurrent layers recomputed step by step from their gate slices, in TensorFlow.

Fused kernels (cuDNN, Keras' own fused bidirectional loops) never expose the gates, so the
activations are recomputed: from a layer's input sequence, mask and initial states, with the
per-gate weight slices of `gates` (read through `GateSlice.select`) and the cell's own
activation functions, in inference mode (dropout off). Every step follows Keras' cell equations
(``LSTMCell``, ``GRUCell`` with both ``reset_after`` variants, ``SimpleRNNCell``,
``ConvLSTMCell``) and its masking rules: at a masked step no state changes, and the output is
zero (``zero_output_for_mask``) or the previous output. The same recomputation also rebuilds
what the layer itself returns (`LayerRun.outputs`, in Keras' order and structure), so that a
caller can check it against the layer's own output and never report gates the layer did not
compute.

Shapes: a direction's values are ``[batch, time, units]`` (ConvLSTM ``[batch, time, *spatial,
filters]``), indexed by *input* timestep in every direction: a backward direction's value at t
is the one it computed when it read input t. Masked positions are NaN.

Gradients through time: with a `tf.GradientTape`, each cell's hidden state gets a zero
perturbation ``eps_t`` added at every step, watched by the tape; ``dL/d eps_t`` is then the
total derivative of a loss with respect to the hidden state h_t, through the layer's output at t
and through every later step.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tensorboard_plugin_weightgates.format import metadata
from tensorboard_plugin_weightgates.format.gate_names import GRU_GATES, LSTM_GATES
from tensorboard_plugin_weightgates.keras_writer import gates

LSTM = "lstm"
GRU = "gru"
SIMPLE_RNN = "simple_rnn"
CONV_LSTM = "conv_lstm"

_FAMILY_GATES = {LSTM: LSTM_GATES, CONV_LSTM: LSTM_GATES, GRU: GRU_GATES, SIMPLE_RNN: ()}

TOLERANCE = {tf.float64: 1e-6, tf.float32: 5e-3, tf.float16: 5e-2, tf.bfloat16: 5e-2}
"""Largest difference, relative to ``max(1, |value|)``, between a recomputed output and the
layer's own, per dtype of the layer's output, within which the recomputation counts as the
layer's. float32 allows for TensorFloat-32 matrix products on GPUs (about 1e-3 relative) and
for cuDNN's other summation order; swapped or missing terms differ by orders more."""


class UnsupportedLayer(ValueError):
    """A recurrent layer whose activations weightgates cannot recompute (the message says why)."""


class RecomputationMismatch(ValueError):
    """The recomputed outputs of a layer differ from the layer's own beyond `TOLERANCE`."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell to recompute: its identity, family, Keras object and weights.

    `weights` maps each kernel name (``kernel``, ``recurrent_kernel``, ``bias`` or, for a
    ``GRU(reset_after=True)``, ``input_bias`` and ``recurrent_bias``) to its gate slices in gate
    order.
    """

    identity: metadata.LayerInfo
    family: str
    cell: Any
    weights: Mapping[str, tuple[gates.GateSlice, ...]]
    saturations: tuple[str | None, ...]
    """The saturation type of each of `names` (see `cell_saturations`)."""

    @property
    def gates(self) -> tuple[str, ...]:
        return _FAMILY_GATES[self.family]

    @property
    def names(self) -> tuple[str, ...]:
        """What the cell computes per step: its gates, the cell state, the hidden state."""
        states = (metadata.CELL_STATE,) if self.family in (LSTM, CONV_LSTM) else ()
        return (*self.gates, *states, metadata.HIDDEN_STATE)

    @property
    def units(self) -> int:
        return int(getattr(self.cell, "units", None) or self.cell.filters)

    @property
    def state_count(self) -> int:
        return 2 if self.family in (LSTM, CONV_LSTM) else 1


@dataclasses.dataclass(frozen=True)
class Direction:
    """One direction of a logged layer: the Keras RNN layer that runs it, and its cells (one,
    or those of ``StackedRNNCells`` in order)."""

    layer: Any
    direction: str
    cells: tuple[Cell, ...]

    @property
    def go_backwards(self) -> bool:
        return bool(self.layer.go_backwards)


@dataclasses.dataclass(frozen=True)
class RecurrentLayer:
    """A logged layer whose activations can be recomputed: `layer` is the object the model
    calls (a ``Bidirectional`` or the RNN layer itself), `directions` one or two."""

    layer: Any
    path: str
    directions: tuple[Direction, ...]

    @property
    def bidirectional(self) -> bool:
        return len(self.directions) == 2

    @property
    def cells(self) -> Iterator[Cell]:
        for direction in self.directions:
            yield from direction.cells


@dataclasses.dataclass(frozen=True)
class CellRun:
    """A cell's recomputed values on one input, by input timestep.

    `values` maps each of `cell.names` to ``[batch, time, *spatial, units]``, NaN at masked
    positions; `valid` is the mask ``[batch, time]`` (True where a step was computed);
    `perturbation` the zero tensor added to the hidden state (in processing order), or None.
    """

    cell: Cell
    values: Mapping[str, tf.Tensor]
    valid: tf.Tensor
    perturbation: tf.Tensor | None
    go_backwards: bool

    def by_input_time(self, tensor: tf.Tensor) -> tf.Tensor:
        """A ``[batch, time, ...]`` tensor in processing order (such as the gradient with
        respect to `perturbation`) by input timestep."""
        return tf.reverse(tensor, [1]) if self.go_backwards else tensor


@dataclasses.dataclass(frozen=True)
class LayerRun:
    """A layer recomputed on one call: the runs of its cells, and what the layer returns
    rebuilt from them, flattened as ``tf.nest.flatten`` flattens the layer's own outputs.
    `output_valid` has, per output, the ``[batch, time]`` mask of its timesteps in the order the
    layer returns them, or None for an output without timesteps."""

    cells: tuple[CellRun, ...]
    outputs: tuple[tf.Tensor, ...]
    output_valid: tuple[tf.Tensor | None, ...]


def saturation_type(activation: Callable[[tf.Tensor], tf.Tensor]) -> str | None:
    """`metadata.SIGMOID` or `metadata.TANH` when `activation` maps the real line onto (0, 1) or
    (-1, 1), found by evaluating it far out on both sides; None for any other range (relu,
    linear)."""
    with tf.init_scope():
        ends = np.asarray(activation(tf.constant([-1e4, 0.0, 1e4], tf.float32)), np.float64)
    for kind, (low, high) in ((metadata.SIGMOID, (0.0, 1.0)), (metadata.TANH, (-1.0, 1.0))):
        if abs(ends[0] - low) < 1e-3 and abs(ends[2] - high) < 1e-3:
            return kind
    return None


def cell_saturations(family: str, cell: Any) -> tuple[str | None, ...]:
    """The saturation type of each value a cell of `family` computes (`Cell.names`), from the
    range of the cell's own activation functions."""
    activation = saturation_type(cell.activation)
    if family == SIMPLE_RNN:
        return (activation,)
    recurrent = saturation_type(cell.recurrent_activation)
    # h is o * act(c) (LSTM) or a mix of h_{t-1} and act(...) (GRU), weighted in [0, 1].
    hidden = activation if recurrent == metadata.SIGMOID else None
    if family == GRU:
        return (recurrent, recurrent, activation, hidden)
    return (recurrent, recurrent, activation, recurrent, None, hidden)


def family(cell: Any) -> str | None:
    """The cell's family by the class names in its MRO (as `gates` does), or None."""
    names = {cls.__name__ for cls in type(cell).__mro__}
    if "ConvLSTMCell" in names:
        return CONV_LSTM
    if "LSTMCell" in names:
        return LSTM
    if "GRUCell" in names:
        return GRU
    if "SimpleRNNCell" in names:
        return SIMPLE_RNN
    return None


def _class_names(obj: Any) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def is_recurrent(layer: Any) -> bool:
    """Whether `layer` is an RNN layer or a ``Bidirectional`` one (supported or not)."""
    names = _class_names(layer)
    return "Bidirectional" in names or ("RNN" in names and hasattr(layer, "cell"))


def find_layers(
    model: Any, layers: Sequence[Any] | None = None
) -> tuple[list[RecurrentLayer], dict[str, str]]:
    """The recurrent layers of `model` (walked depth-first into nested models) that `layers`
    selects (as `gates.split_model`), in model order, and, by layer path, those that cannot be
    recomputed and why. Layers inside ``TimeDistributed`` and other wrappers are not looked at.
    """
    slices = gates.split_model(model, layers=layers)
    found: list[RecurrentLayer] = []
    unsupported: dict[str, str] = {}
    for layer in _walk(model):
        if not is_recurrent(layer):
            continue
        try:
            recurrent = describe(layer, slices)
        except UnsupportedLayer as error:
            path = _path_of(layer, slices)
            if path is not None:
                unsupported[path] = str(error)
            continue
        if recurrent is not None:
            found.append(recurrent)
    found.sort(key=lambda r: next(r.cells).identity.order)
    return found, unsupported


def _walk(container: Any) -> Iterator[Any]:
    seen: set[int] = set()
    stack = list(reversed(container.layers))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if "Model" in _class_names(layer):
            stack.extend(reversed(layer.layers))
        else:
            yield layer


def _path_of(layer: Any, slices: Sequence[gates.GateSlice]) -> str | None:
    own = {id(v) for v in layer.weights}
    return next((s.layer for s in slices if id(s.variable) in own), None)


def describe(layer: Any, slices: Sequence[gates.GateSlice] | None = None) -> RecurrentLayer | None:
    """How to recompute `layer`, from its gate slices (default: `gates.split_layer`); None when
    none of its cells has slices (a layer that `layers=` left out).

    Raises:
      UnsupportedLayer: a cell of an unknown family, or a layer option the recomputation does
        not follow (stateful layers, ``time_major``, constants, ``channels_first`` ConvLSTM).
    """
    if slices is None:
        slices = gates.split_layer(layer)
    by_variable: dict[int, list[gates.GateSlice]] = {}
    for piece in slices:
        by_variable.setdefault(id(piece.variable), []).append(piece)
    inner = [layer]
    if "Bidirectional" in _class_names(layer):
        inner = [layer.forward_layer, layer.backward_layer]
    directions = []
    for name, rnn in zip(metadata.DIRECTIONS, inner):
        _check_supported(rnn)
        cells = getattr(rnn.cell, "cells", None) or [rnn.cell]
        described = []
        for cell in cells:
            described_cell = _describe_cell(rnn, cell, by_variable)
            if described_cell is None:
                return None
            described.append(described_cell)
        directions.append(Direction(layer=rnn, direction=name, cells=tuple(described)))
    path = directions[0].cells[0].identity.layer
    return RecurrentLayer(layer=layer, path=path, directions=tuple(directions))


def _check_supported(rnn: Any) -> None:
    name = f"{type(rnn).__name__} {rnn.name!r}"
    if not ("RNN" in _class_names(rnn) and hasattr(rnn, "cell")):
        raise UnsupportedLayer(f"{name} is not a recurrent layer")
    if getattr(rnn, "stateful", False):
        raise UnsupportedLayer(
            f"{name} is stateful: a probe would replace the states it keeps between batches"
        )
    if getattr(rnn, "time_major", False):
        raise UnsupportedLayer(f"{name} is time_major")
    if getattr(rnn, "_num_constants", 0):
        raise UnsupportedLayer(f"{name} takes constants")
    cells = getattr(rnn.cell, "cells", None) or [rnn.cell]
    for cell in cells:
        if family(cell) is None:
            raise UnsupportedLayer(
                f"{name} has a {type(cell).__name__}: weightgates recomputes LSTM, GRU, "
                "SimpleRNN and ConvLSTM cells only"
            )
        if getattr(cell, "data_format", "channels_last") != "channels_last":
            raise UnsupportedLayer(f"{name} has data_format={cell.data_format!r}")


def _describe_cell(rnn: Any, cell: Any, by_variable: Mapping[int, list]) -> Cell | None:
    weights: dict[str, tuple[gates.GateSlice, ...]] = {}
    for attr in ("kernel", "recurrent_kernel", "bias"):
        variable = getattr(cell, attr, None)
        if variable is None:
            continue
        for piece in by_variable.get(id(variable), []):
            weights.setdefault(piece.kernel, ())
            weights[piece.kernel] += (piece,)
    if "kernel" not in weights or "recurrent_kernel" not in weights:
        return None
    first = weights["kernel"][0]
    identity = metadata.LayerInfo(
        layer=first.layer,
        layer_type=first.layer_type,
        order=first.order,
        direction=first.direction,
        cell=first.cell,
        bidirectional=first.bidirectional,
    )
    ordered = {k: tuple(sorted(v, key=lambda s: s.gate_index)) for k, v in weights.items()}
    kind = family(cell) or ""
    return Cell(
        identity=identity,
        family=kind,
        cell=cell,
        weights=ordered,
        saturations=cell_saturations(kind, cell),
    )


# The recomputation.


def call_arguments(
    recurrent: RecurrentLayer, call: Callable, args: tuple, kwargs: Mapping[str, Any]
) -> tuple[Any, Any, list[list[Any] | None]]:
    """The input sequence, the mask and each direction's initial states (None: zeros) of one
    call of `recurrent.layer` as Keras hands it to ``call`` (Keras 3 passes initial states by
    keyword, tf-keras may pack them after the sequence in a list)."""
    bound = inspect.signature(call).bind_partial(*args, **kwargs).arguments
    names = list(inspect.signature(call).parameters)
    sequences = bound[names[0]]
    initial = bound.get("initial_state")
    if isinstance(sequences, (list, tuple)):
        if len(sequences) > 1:
            initial = list(sequences[1:])
        sequences = sequences[0]
    mask = bound.get("mask")
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if initial is not None and not isinstance(initial, (list, tuple)):
        initial = [initial]
    if initial is None or len(initial) == 0:
        return sequences, mask, [None] * len(recurrent.directions)
    initial = list(initial)
    if recurrent.bidirectional:
        half = len(initial) // 2
        return sequences, mask, [initial[:half], initial[half:]]
    return sequences, mask, [initial]


def run(
    recurrent: RecurrentLayer,
    sequences: Any,
    mask: Any = None,
    initial_states: Sequence[Sequence[Any] | None] | None = None,
    tape: tf.GradientTape | None = None,
) -> LayerRun:
    """Recomputes `recurrent` on `sequences` (``[batch, time, ...]``).

    Args:
      mask: bool ``[batch, time]``, or None for every step.
      initial_states: per direction, its layer's initial states (flat, cell after cell), or
        None for zeros.
      tape: a tape to watch each hidden state's perturbation (see the module docstring).
    """
    initial_states = initial_states or [None] * len(recurrent.directions)
    cell_runs: list[CellRun] = []
    direction_outputs = []
    for direction, initial in zip(recurrent.directions, initial_states):
        runs, outputs, valid = _run_direction(direction, sequences, mask, initial, tape)
        cell_runs.extend(runs)
        direction_outputs.append((direction, outputs, valid))
    if not recurrent.bidirectional:
        _, outputs, valid = direction_outputs[0]
        return LayerRun(tuple(cell_runs), tuple(outputs), tuple(valid))
    outputs, valid = _merge(recurrent.layer, direction_outputs)
    return LayerRun(tuple(cell_runs), tuple(outputs), tuple(valid))


def _run_direction(
    direction: Direction,
    sequences: Any,
    mask: Any,
    initial: Sequence[Any] | None,
    tape: tf.GradientTape | None,
) -> tuple[list[CellRun], list[tf.Tensor], list[tf.Tensor | None]]:
    """The runs of a direction's cells, its layer's outputs rebuilt (the sequence or last
    output, then the final states if it returns them) and their timestep masks."""
    layer = direction.layer
    dtype = _compute_dtype(direction.cells[0])
    x = tf.cast(sequences, dtype)
    batch, steps = tf.shape(x)[0], tf.shape(x)[1]
    valid = tf.ones([batch, steps], tf.bool) if mask is None else tf.cast(mask, tf.bool)
    processing_valid = tf.reverse(valid, [1]) if direction.go_backwards else valid
    inputs = tf.reverse(x, [1]) if direction.go_backwards else x
    flat_initial = [] if initial is None else [tf.cast(s, dtype) for s in tf.nest.flatten(initial)]
    runs = []
    final_states: list[tf.Tensor] = []
    emitted = None
    zero_output = bool(getattr(layer, "zero_output_for_mask", False))
    for cell in direction.cells:
        count = cell.state_count
        cell_initial, flat_initial = flat_initial[:count], flat_initial[count:]
        stepped = _scan_cell(
            cell,
            inputs,
            None if mask is None else processing_valid,
            cell_initial or None,
            tape,
            zero_output,
        )
        values = {
            name: _by_input_time(v, direction.go_backwards) for name, v in stepped.values.items()
        }
        if mask is not None:
            values = {name: _masked(v, valid) for name, v in values.items()}
        runs.append(
            CellRun(
                cell=cell,
                values=values,
                valid=valid,
                perturbation=stepped.perturbation,
                go_backwards=direction.go_backwards,
            )
        )
        final_states.extend(stepped.final_states)
        inputs = stepped.hidden
        emitted = stepped.emitted
    assert emitted is not None
    if layer.return_sequences:
        outputs: list[tf.Tensor] = [emitted]
        valid_masks: list[tf.Tensor | None] = [processing_valid]
    else:
        outputs, valid_masks = [emitted[:, -1]], [None]
    if layer.return_state:
        outputs += final_states
        valid_masks += [None] * len(final_states)
    return runs, outputs, valid_masks


def _merge(bidirectional: Any, direction_outputs: list) -> tuple[list, list]:
    """A ``Bidirectional`` layer's outputs from its directions', as Keras merges them."""
    (_, forward, forward_valid), (_, backward, backward_valid) = direction_outputs
    y, y_rev = forward[0], backward[0]
    valid = forward_valid[0]
    if bidirectional.return_sequences:
        y_rev = tf.reverse(y_rev, [1])
    mode = bidirectional.merge_mode
    if mode == "concat":
        merged = [tf.concat([y, y_rev], axis=-1)]
    elif mode == "sum":
        merged = [y + y_rev]
    elif mode == "ave":
        merged = [(y + y_rev) / 2]
    elif mode == "mul":
        merged = [y * y_rev]
    elif mode is None:
        merged = [y, y_rev]
    else:
        raise UnsupportedLayer(f"Bidirectional merge_mode {mode!r}")
    reverse_valid = None if backward_valid[0] is None else tf.reverse(backward_valid[0], [1])
    merged_valid = [valid] if mode is not None else [valid, reverse_valid]
    states = forward[1:] + backward[1:] if bidirectional.return_state else []
    return merged + states, merged_valid + [None] * len(states)


@dataclasses.dataclass(frozen=True)
class _Stepped:
    values: dict[str, tf.Tensor]
    """By name, ``[batch, time, *spatial, units]`` in processing order."""
    hidden: tf.Tensor
    """The (perturbed) hidden state at every step, processing order: the next cell's input."""
    emitted: tf.Tensor
    """What the layer emits at every step: the hidden state, or at masked steps zeros or the
    previous emission (``zero_output_for_mask``)."""
    final_states: list[tf.Tensor]
    perturbation: tf.Tensor | None


def _scan_cell(
    cell: Cell,
    inputs: tf.Tensor,
    valid: tf.Tensor | None,
    initial: Sequence[tf.Tensor] | None,
    tape: tf.GradientTape | None,
    zero_output: bool,
) -> _Stepped:
    """Runs one cell over `inputs` (``[batch, time, ...]``, processing order); `valid` is the
    mask in processing order, or None for every step (then no step is masked, and the loop
    has no masking ops)."""
    dtype = inputs.dtype
    weights = _read_weights(cell, dtype)
    projected = _project_inputs(cell, inputs, weights)  # [batch, time, *spatial, gates * units]
    state_shape = tf.concat([tf.shape(projected)[:1], tf.shape(projected)[2:-1], [cell.units]], 0)
    steps = tf.shape(projected)[1]
    perturbation = None
    if tape is not None:
        perturbation = tf.zeros(tf.concat([tf.shape(projected)[:2], state_shape[1:]], 0), dtype)
        tape.watch(perturbation)
    if initial is None:
        initial = [tf.zeros(state_shape, dtype)] * cell.state_count
    step = _STEPS[cell.family]
    names = cell.names
    rank = len(projected.shape) - 2  # dims of one step's values past the batch

    def time_major(tensor: tf.Tensor) -> tf.Tensor:
        return tf.transpose(tensor, [1, 0, *range(2, len(tensor.shape))])

    z_all = time_major(projected)
    eps_all = None if perturbation is None else time_major(perturbation)
    keep_all = None if valid is None else tf.transpose(valid)
    outputs = [*names, "emitted"] if valid is not None else list(names)
    # Static sizes where known (the probe's), so that the stacked values keep their shape.
    size = projected.shape[1] if projected.shape[1] is not None else steps
    element = tf.TensorShape([projected.shape[0], *projected.shape[2:-1], cell.units])
    arrays = [tf.TensorArray(dtype, size=size, element_shape=element) for _ in outputs]

    def body(t, states, emitted, arrays):
        h, new_states, values = step(cell, weights, z_all[t], list(states))
        if eps_all is not None:
            h = h + eps_all[t]
        new_states = [h, *new_states[1:]]
        values = {**values, metadata.HIDDEN_STATE: h}
        written = [values[n] for n in names]
        if keep_all is not None:
            keep = tf.reshape(keep_all[t], [-1] + [1] * rank)
            new_states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
            emitted = tf.where(keep, h, tf.zeros_like(h) if zero_output else emitted)
            written.append(emitted)
        arrays = [a.write(t, v) for a, v in zip(arrays, written)]
        return t + 1, new_states, emitted, arrays

    _, final, _, arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), list(initial), tf.zeros(state_shape, dtype), arrays),
    )
    stacked = [time_major(a.stack()) for a in arrays]
    values = dict(zip(names, stacked))
    return _Stepped(
        values=values,
        hidden=values[metadata.HIDDEN_STATE],
        emitted=stacked[-1] if valid is not None else values[metadata.HIDDEN_STATE],
        final_states=list(final),
        perturbation=perturbation,
    )


def _compute_dtype(cell: Cell) -> tf.DType:
    dtype = tf.as_dtype(cell.weights["kernel"][0].variable.dtype)
    return tf.float64 if dtype == tf.float64 else tf.float32


def _read_weights(cell: Cell, dtype: tf.DType) -> dict[str, tf.Tensor]:
    """Each kernel of the cell, all gates side by side, read through the slices."""
    read = {}
    for name, pieces in cell.weights.items():
        parts = [tf.cast(p.select(tf.convert_to_tensor(p.variable)), dtype) for p in pieces]
        read[name] = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    return read


def _project_inputs(cell: Cell, inputs: tf.Tensor, weights: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The input kernel (and input bias) applied at every step at once."""
    bias = weights.get("bias", weights.get("input_bias"))
    if cell.family == CONV_LSTM:
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, tf.concat([[-1], shape[2:]], 0))
        keras_cell = cell.cell
        projected = tf.nn.convolution(
            flat,
            weights["kernel"],
            strides=list(keras_cell.strides),
            padding=keras_cell.padding.upper(),
            dilations=list(keras_cell.dilation_rate),
        )
        out_shape = tf.concat([shape[:2], tf.shape(projected)[1:]], 0)
        projected = tf.reshape(projected, out_shape)
    else:
        projected = tf.tensordot(inputs, weights["kernel"], axes=1)
    if bias is not None:
        projected = projected + bias
    return projected


def _recurrent(cell: Cell, state: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    if cell.family == CONV_LSTM:
        rank = len(state.shape) - 2
        return tf.nn.convolution(state, kernel, strides=[1] * rank, padding="SAME")
    return tf.matmul(state, kernel)


def _lstm_step(cell: Cell, w: Mapping[str, tf.Tensor], z_in: tf.Tensor, states: list):
    h, c = states
    z = z_in + _recurrent(cell, h, w["recurrent_kernel"])
    z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    act, rec = cell.cell.activation, cell.cell.recurrent_activation
    i, f, g, o = rec(z_i), rec(z_f), act(z_c), rec(z_o)
    c = f * c + i * g
    h = o * act(c)
    values = {"input": i, "forget": f, "cell": g, "output": o, metadata.CELL_STATE: c}
    return h, [h, c], values


def _gru_step(cell: Cell, w: Mapping[str, tf.Tensor], z_in: tf.Tensor, states: list):
    (h,) = states
    act, rec = cell.cell.activation, cell.cell.recurrent_activation
    x_z, x_r, x_h = tf.split(z_in, 3, axis=-1)
    if "recurrent_bias" in w:  # reset_after: the reset gate scales the recurrent projection
        inner = tf.matmul(h, w["recurrent_kernel"]) + w["recurrent_bias"]
        r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
        z, r = rec(x_z + r_z), rec(x_r + r_r)
        candidate = act(x_h + r * r_h)
    else:
        k_z, k_r, k_h = tf.split(w["recurrent_kernel"], 3, axis=-1)
        z, r = rec(x_z + tf.matmul(h, k_z)), rec(x_r + tf.matmul(h, k_r))
        candidate = act(x_h + tf.matmul(r * h, k_h))
    h = z * h + (1.0 - z) * candidate
    return h, [h], {"update": z, "reset": r, "candidate": candidate}


def _simple_rnn_step(cell: Cell, w: Mapping[str, tf.Tensor], z_in: tf.Tensor, states: list):
    (h,) = states
    h = cell.cell.activation(z_in + tf.matmul(h, w["recurrent_kernel"]))
    return h, [h], {}


_STEPS = {LSTM: _lstm_step, CONV_LSTM: _lstm_step, GRU: _gru_step, SIMPLE_RNN: _simple_rnn_step}


def _by_input_time(tensor: tf.Tensor, go_backwards: bool) -> tf.Tensor:
    return tf.reverse(tensor, [1]) if go_backwards else tensor


def _masked(tensor: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    keep = tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (len(tensor.shape) - 2)], 0))
    return tf.where(keep, tensor, tf.constant(np.nan, tensor.dtype))


# Checking a recomputation against the layer's own outputs.


def output_error(own: Sequence[Any], recomputed: LayerRun) -> tf.Tensor:
    """The largest difference between the layer's own outputs (flattened) and the recomputed
    ones, relative to ``max(1, |own|)``, over every output and every timestep the mask keeps:
    0 where both are the same NaN or infinity, +inf where only one is finite. A float32
    scalar."""
    if len(own) != len(recomputed.outputs):
        raise RecomputationMismatch(
            f"the layer returned {len(own)} tensors, the recomputation {len(recomputed.outputs)}"
        )
    errors = [tf.zeros([], tf.float32)]
    for mine, theirs, valid in zip(recomputed.outputs, own, recomputed.output_valid):
        theirs = tf.cast(theirs, tf.float32)
        mine = tf.cast(mine, tf.float32)
        if mine.shape.rank != theirs.shape.rank:
            raise RecomputationMismatch(f"output shapes {mine.shape} and {theirs.shape} differ")
        diff = tf.abs(mine - theirs) / tf.maximum(1.0, tf.abs(theirs))
        same = tf.logical_or(
            tf.logical_and(tf.math.is_nan(mine), tf.math.is_nan(theirs)),
            tf.logical_and(tf.math.is_inf(theirs), tf.equal(mine, theirs)),
        )
        diff = tf.where(same, 0.0, tf.where(tf.math.is_nan(diff), np.inf, diff))
        if valid is not None:
            keep = tf.reshape(valid, tf.concat([tf.shape(valid), [1] * (diff.shape.rank - 2)], 0))
            diff = tf.where(keep, diff, 0.0)
        errors.append(tf.reduce_max(tf.concat([tf.reshape(diff, [-1]), [0.0]], 0)))
    return tf.reduce_max(tf.stack(errors))


def tolerance(own: Sequence[Any]) -> float:
    """`TOLERANCE` of the least precise of the layer's own outputs."""
    dtypes = [tf.as_dtype(o.dtype) for o in own]
    return max(TOLERANCE.get(d, TOLERANCE[tf.float32]) for d in dtypes)
