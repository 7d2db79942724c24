"""The names of the gates, per family of recurrent cell, in Keras' storage order.

Keras stores all gates of a recurrent kernel side by side along its last axis and computes them
with one product before cutting the result apart; these tuples name those blocks in that order.
They are part of the vocabulary every side shares (the writer that splits layers, the reader and
the tab that label them), and hold for any framework that stores gates the same way.
"""

from __future__ import annotations

LSTM_GATES = ("input", "forget", "cell", "output")
"""LSTM, LSTMCell, ConvLSTM1D/2D/3D: i, f, c (the candidate cell state), o."""

GRU_GATES = ("update", "reset", "candidate")
"""GRU, GRUCell: z, r, h (the candidate hidden state)."""

NO_GATES = (None,)
"""A variable that is one slice: SimpleRNN's kernels, and every layer that is not recurrent."""
