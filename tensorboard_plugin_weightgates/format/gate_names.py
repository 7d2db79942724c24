"""The names of the gates, per family of recurrent cell, in Keras' storage order, and of
attention heads.

Keras stores all gates of a recurrent kernel side by side along its last axis and computes them
with one product before cutting the result apart; these tuples name those blocks in that order.
An attention layer's projections hold one block per head in the same way (along a heads axis),
so a head is a gate of its kernel: ``head_0`` of ``query/kernel``. These names are part of the
vocabulary every side shares (the writer that splits layers, the reader and the tab that label
them), and hold for any framework that stores gates the same way.
"""

from __future__ import annotations

LSTM_GATES = ("input", "forget", "cell", "output")
"""LSTM, LSTMCell, ConvLSTM1D/2D/3D: i, f, c (the candidate cell state), o."""

GRU_GATES = ("update", "reset", "candidate")
"""GRU, GRUCell: z, r, h (the candidate hidden state)."""

NO_GATES = (None,)
"""A variable that is one slice: SimpleRNN's kernels, and every layer that is not recurrent."""

HEAD_PREFIX = "head_"


def head_names(heads: int) -> tuple[str, ...]:
    """``head_0``, ``head_1``, ...: the gates of an attention kernel split per head, in the order
    of the kernel's heads axis (for ``GroupQueryAttention``, query heads in the query and output
    kernels, key-value heads in the key and value kernels)."""
    return tuple(f"{HEAD_PREFIX}{i}" for i in range(heads))
