"""NumPy reference equations of Keras' recurrent cells, to check gate slices against.

Every function takes its weights per kernel and gate name, ``w[kernel][gate]`` (the layout of
`weights_by_gate`), never as whole Keras variables: a test that builds `w` from gate slices
by name reproduces the layer's output only if each slice holds its gate's columns. The maths
runs in float64 so that any error above float32 rounding is the split's, not the reference's.

Shapes: inputs ``[batch, time, ...features]``; outputs ``[batch, time, ...units]``, every step
(as ``return_sequences=True``), from a zero initial state as Keras does by default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

Weights = dict[str, dict[str | None, np.ndarray]]
Project = Callable[[np.ndarray, np.ndarray], np.ndarray]


def weights_by_gate(
    slices: Iterable, direction: str = "forward", cell: int | None = None
) -> Weights:
    """``{kernel: {gate: float64 values}}`` of one direction and cell, looked up by name."""
    weights: Weights = {}
    for piece in slices:
        if piece.direction == direction and piece.cell == cell:
            weights.setdefault(piece.kernel, {})[piece.gate] = piece.values.astype(np.float64)
    return weights


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def dense(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A dense projection of the last axis."""
    return x @ kernel


def lstm(
    x: np.ndarray, w: Weights, project_input: Project = dense, project_state: Project = dense
) -> np.ndarray:
    """LSTM with Keras defaults (tanh, sigmoid recurrent activation); with convolutions as the
    projections it is ConvLSTM, whose state has the shape of the input projection."""
    x = x.astype(np.float64)
    outputs = []
    h = c = None
    for t in range(x.shape[1]):
        z = {g: project_input(x[:, t], w["kernel"][g]) + w["bias"][g] for g in w["kernel"]}
        if h is None:
            h = c = np.zeros_like(z["input"])
        for g in z:
            z[g] = z[g] + project_state(h, w["recurrent_kernel"][g])
        c = sigmoid(z["forget"]) * c + sigmoid(z["input"]) * np.tanh(z["cell"])
        h = sigmoid(z["output"]) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def gru(x: np.ndarray, w: Weights) -> np.ndarray:
    """GRU with Keras defaults; ``reset_after`` is read from the kernels present: separate
    ``input_bias``/``recurrent_bias`` rows mean the reset gate multiplies the recurrent
    projection (cuDNN style), a single ``bias`` means it multiplies the state before it."""
    x = x.astype(np.float64)
    reset_after = "recurrent_bias" in w
    b_in = w["input_bias"] if reset_after else w["bias"]
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    h = np.zeros((x.shape[0], kernel["update"].shape[-1]))
    outputs = []
    for t in range(x.shape[1]):
        xz = {g: x[:, t] @ kernel[g] + b_in[g] for g in kernel}
        hz = {
            g: h @ recurrent[g] + (w["recurrent_bias"][g] if reset_after else 0.0) for g in kernel
        }
        z = sigmoid(xz["update"] + hz["update"])
        r = sigmoid(xz["reset"] + hz["reset"])
        if reset_after:
            candidate = np.tanh(xz["candidate"] + r * hz["candidate"])
        else:
            candidate = np.tanh(xz["candidate"] + (r * h) @ recurrent["candidate"])
        h = z * h + (1.0 - z) * candidate
        outputs.append(h)
    return np.stack(outputs, axis=1)


def simple_rnn(x: np.ndarray, w: Weights) -> np.ndarray:
    """SimpleRNN with tanh; its kernels have the single gate ``None``."""
    x = x.astype(np.float64)
    kernel, recurrent, bias = w["kernel"][None], w["recurrent_kernel"][None], w["bias"][None]
    h = np.zeros((x.shape[0], kernel.shape[-1]))
    outputs = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def backward(cell: Callable[[np.ndarray, Weights], np.ndarray], x: np.ndarray, w: Weights):
    """The backward half of a Bidirectional: the cell runs over the reversed sequence and its
    outputs are flipped back so that step t of both halves lines up."""
    return cell(x[:, ::-1], w)[:, ::-1]


def merge(forward: np.ndarray, backward: np.ndarray, mode: str | None):
    """Bidirectional's `merge_mode`; None keeps both halves as a list."""
    if mode is None:
        return [forward, backward]
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    if mode == "ave":
        return (forward + backward) / 2.0
    raise ValueError(f"unknown merge_mode {mode!r}")


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def attention(query: np.ndarray, value: np.ndarray, w: Weights) -> np.ndarray:
    """Multi-head attention (`MultiHeadAttention` with its defaults; `GroupQueryAttention`
    when there are fewer key and value heads than query heads) of ``[batch, time, features]``
    inputs, the key being the value, from its weights per head: ``w["query/kernel"]["head_h"]``
    is ``[features, head_dim]``, the output kernel's ``[d_out, head_dim]`` (rows are output
    units). Query head h reads key-value head ``h // (query heads / key-value heads)``; a
    ``gate`` projection, where present, multiplies each head's result by its sigmoid."""
    query = query.astype(np.float64)
    value = value.astype(np.float64)

    def project(x: np.ndarray, name: str, head: str) -> np.ndarray:
        out = x @ w[f"{name}/kernel"][head]
        return out + w[f"{name}/bias"][head] if f"{name}/bias" in w else out

    heads = list(w["query/kernel"])
    shared = len(heads) // len(w["key/kernel"])
    output = 0.0
    for h, head in enumerate(heads):
        kv_head = list(w["key/kernel"])[h // shared]
        q = project(query, "query", head)
        k = project(value, "key", kv_head)
        v = project(value, "value", kv_head)
        scores = softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]))
        mixed = scores @ v
        if "gate/kernel" in w:
            mixed = mixed * sigmoid(project(query, "gate", head))
        output = output + mixed @ w["attention_output/kernel"][head].T
    if "attention_output/bias" in w:
        output = output + w["attention_output/bias"][None]
    return output
