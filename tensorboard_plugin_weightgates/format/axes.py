"""What each axis of a gate slice is: the names that say what a heatmap's row and column are.

A slice's `metadata.KernelInfo.axes` names its axes in order, one name per axis of its shape.
The heatmap of a kernel is its slices side by side along the last axis, every other axis
flattened into rows in row-major order (`snapshot`), so the last name says what a column is
within a gate (one *unit* of the statistics) and the other names, read together, what a row is:
row ``r`` of a ``[3, 3, 2, 8]`` ConvLSTM2D gate with axes ``(offset_0, offset_1,
input_channel, unit)`` is offset ``(r // 6, r // 2 % 3)`` of the window and input channel
``r % 2``.

Names (the vocabulary; a reader shows an unknown name as it is):

* ``input``: an input feature (the last axis of the layer's input): the rows of a Dense, LSTM,
  GRU or SimpleRNN kernel and of an attention query, key or value kernel.
* ``hidden``: a unit of the previous hidden state: the rows of a recurrent kernel.
* ``offset_0``, ``offset_1``, ``offset_2``: the position within a convolution's window along
  its first, second and third spatial axis (height and width for 2-D).
* ``input_channel``, ``hidden_channel``: the channel of a convolution's input, or of the
  hidden state of a ConvLSTM, at that offset.
* ``token``: a row of an embedding table (a token id).
* ``unit``: an output unit of the gate, or of the layer for a variable without gates (a Dense
  or Conv filter, an embedding dimension, one value of a bias or a normalization scale).
* ``head_dim``: a component of an attention head's projection (`query`, `key`, `value`, and
  the inputs of the output projection from that head).
* ``output``: an output unit of attention's output projection (``output_0``, ``output_1``... for
  an output shape of several axes).
* ``axis_0``, ``axis_1``...: an axis weightgates knows nothing about (a custom layer's weight).
"""

from __future__ import annotations

from collections.abc import Collection

INPUT = "input"
HIDDEN = "hidden"
INPUT_CHANNEL = "input_channel"
HIDDEN_CHANNEL = "hidden_channel"
TOKEN = "token"
UNIT = "unit"
HEAD_DIM = "head_dim"
OUTPUT = "output"

PROJECTION_TYPES = frozenset(
    {
        "LSTM",
        "LSTMCell",
        "GRU",
        "GRUCell",
        "SimpleRNN",
        "SimpleRNNCell",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "ConvLSTMCell",
        "Dense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
    }
)
"""Layers and cells whose ``kernel`` maps inputs (or, for a convolution, window offsets and input
channels) to units along its last axis, and whose ``recurrent_kernel`` maps the hidden state."""

_TRANSPOSED_TYPES = frozenset({"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"})
"""Subclasses of a `PROJECTION_TYPES` class (in tf-keras) whose kernel holds its filters on the
second-to-last axis instead."""

_BIASES = frozenset({"bias", "input_bias", "recurrent_bias"})


def offset(axis: int) -> str:
    """The name of a window offset along spatial axis `axis` (0 for the first)."""
    return f"offset_{axis}"


def unknown(rank: int) -> tuple[str, ...]:
    """Names for a variable of `rank` axes that weightgates knows nothing about: ``axis_0``...
    then ``unit`` for the last axis, which the statistics count as units."""
    if rank == 0:
        return ()
    return tuple(f"axis_{i}" for i in range(rank - 1)) + (UNIT,)


def projection(rank: int, source: str) -> tuple[str, ...]:
    """A projection of `source` (`INPUT` or `HIDDEN`) to units: ``(source, unit)`` for a matrix;
    for a convolution kernel of `rank` axes, its window offsets, the channel of `source`, then
    ``unit``."""
    if rank < 2:
        return unknown(rank)
    if rank == 2:
        return (source, UNIT)
    channel = INPUT_CHANNEL if source == INPUT else HIDDEN_CHANNEL
    return tuple(offset(i) for i in range(rank - 2)) + (channel, UNIT)


def outputs(rank: int) -> tuple[str, ...]:
    """Names of `rank` output axes of an attention output projection."""
    if rank == 1:
        return (OUTPUT,)
    return tuple(f"{OUTPUT}_{i}" for i in range(rank))


def kernel_axes(kernel: str, rank: int, layer_types: Collection[str]) -> tuple[str, ...]:
    """The axis names of a slice of `rank` axes of the kernel named `kernel`, in a layer or cell
    whose class (with its base classes, where known) is among `layer_types`.

    Writers use it for every slice that is not an attention head (those are named where the
    heads are split); readers use it for records of format version 1, which carried no names.
    """
    types = set(layer_types)
    if rank == 0:
        return ()
    if rank == 1 and (kernel in _BIASES or kernel.endswith("/bias")):
        return (UNIT,)
    known = bool(types & PROJECTION_TYPES) and not types & _TRANSPOSED_TYPES
    if known and kernel == "kernel":
        return projection(rank, INPUT)
    if known and kernel == "recurrent_kernel":
        return projection(rank, HIDDEN)
    if kernel == "embeddings" and rank == 2:
        return (TOKEN, UNIT)
    return unknown(rank)
