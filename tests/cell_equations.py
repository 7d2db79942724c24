"""NumPy reference equations of Keras' recurrent cells, to check gate slices against.

Every function takes its weights per kernel and gate name, ``w[kernel][gate]`` (the layout of
`weights_by_gate`), never as whole Keras variables: a test that builds `w` from gate slices
by name reproduces the layer's output only if each slice holds its gate's columns. The maths
runs in float64 so that any error above float32 rounding is the split's, not the reference's.

Shapes: inputs ``[batch, time, ...features]``; outputs ``[batch, time, ...units]``, every step
(as ``return_sequences=True``), from a zero initial state as Keras does by default. The cells
(`lstm_cell`, `gru_cell`, `simple_rnn_cell`) also give every gate and state per step, with
`run` applying masks, initial states and ``go_backwards`` as Keras' RNN layers do.
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


Step = Callable[[np.ndarray, "list[np.ndarray] | None"], tuple[dict, list[np.ndarray]]]
"""One step of a cell: ``step(x_t, states)`` (states None: zeros) gives the step's values by
name (gates after their nonlinearity, ``cell_state``, ``hidden_state``) and the new states."""


def lstm_cell(
    w: Weights,
    project_input: Project = dense,
    project_state: Project = dense,
    activation: Callable = np.tanh,
    recurrent_activation: Callable = sigmoid,
) -> Step:
    """LSTM (Keras defaults: tanh, sigmoid recurrent activation); with convolutions as the
    projections it is ConvLSTM, whose state has the shape of the input projection."""

    def step(x_t, states):
        z = {
            g: project_input(x_t, w["kernel"][g]) + w.get("bias", {}).get(g, 0.0)
            for g in w["kernel"]
        }
        h, c = states or (np.zeros_like(z["input"]), np.zeros_like(z["input"]))
        for g in z:
            z[g] = z[g] + project_state(h, w["recurrent_kernel"][g])
        i, f = recurrent_activation(z["input"]), recurrent_activation(z["forget"])
        g, o = activation(z["cell"]), recurrent_activation(z["output"])
        c = f * c + i * g
        h = o * activation(c)
        values = {"input": i, "forget": f, "cell": g, "output": o, "cell_state": c}
        return {**values, "hidden_state": h}, [h, c]

    return step


def gru_cell(
    w: Weights, activation: Callable = np.tanh, recurrent_activation: Callable = sigmoid
) -> Step:
    """GRU (Keras defaults); ``reset_after`` is read from the kernels present: separate
    ``input_bias``/``recurrent_bias`` rows mean the reset gate multiplies the recurrent
    projection (cuDNN style), a single ``bias`` means it multiplies the state before it."""
    reset_after = "recurrent_bias" in w
    b_in = w["input_bias"] if reset_after else w.get("bias", {})
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]

    def step(x_t, states):
        (h,) = states or (np.zeros((x_t.shape[0], kernel["update"].shape[-1])),)
        xz = {g: x_t @ kernel[g] + b_in.get(g, 0.0) for g in kernel}
        hz = {
            g: h @ recurrent[g] + (w["recurrent_bias"][g] if reset_after else 0.0) for g in kernel
        }
        z = recurrent_activation(xz["update"] + hz["update"])
        r = recurrent_activation(xz["reset"] + hz["reset"])
        if reset_after:
            candidate = activation(xz["candidate"] + r * hz["candidate"])
        else:
            candidate = activation(xz["candidate"] + (r * h) @ recurrent["candidate"])
        h = z * h + (1.0 - z) * candidate
        return {"update": z, "reset": r, "candidate": candidate, "hidden_state": h}, [h]

    return step


def simple_rnn_cell(w: Weights, activation: Callable = np.tanh) -> Step:
    """SimpleRNN; its kernels have the single gate ``None``."""
    kernel, recurrent = w["kernel"][None], w["recurrent_kernel"][None]
    bias = w["bias"][None] if "bias" in w else 0.0

    def step(x_t, states):
        (h,) = states or (np.zeros((x_t.shape[0], kernel.shape[-1])),)
        h = activation(x_t @ kernel + h @ recurrent + bias)
        return {"hidden_state": h}, [h]

    return step


def run(
    step: Step,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    initial: list[np.ndarray] | None = None,
    go_backwards: bool = False,
) -> dict[str, np.ndarray]:
    """Runs `step` over `x` ``[batch, time, ...]`` as a Keras RNN layer does: in reverse with
    `go_backwards`, from `initial` states (None: zeros), keeping every state unchanged at the
    steps `mask` (bool ``[batch, time]``) leaves out. Returns each value ``[batch, time,
    ...]`` by input timestep, NaN at masked steps, and under ``"final_states"`` the states
    after the last step."""
    x = x.astype(np.float64)
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    states = None if initial is None else [np.asarray(s, np.float64) for s in initial]
    per_step: dict[int, dict] = {}
    for t in steps:
        values, new_states = step(x[:, t], states)
        keep = np.ones(x.shape[0], bool) if mask is None else mask[:, t]
        if states is None:
            states = [np.zeros_like(s) for s in new_states]
        states = [
            np.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
            for new, old in zip(new_states, states)
        ]
        per_step[t] = {
            name: np.where(keep.reshape((-1,) + (1,) * (v.ndim - 1)), v, np.nan)
            for name, v in values.items()
        }
    names = per_step[0].keys()
    result = {name: np.stack([per_step[t][name] for t in range(x.shape[1])], 1) for name in names}
    result["final_states"] = states
    return result


def lstm(
    x: np.ndarray, w: Weights, project_input: Project = dense, project_state: Project = dense
) -> np.ndarray:
    """The hidden states of an LSTM (or ConvLSTM, see `lstm_cell`), every step, from zeros."""
    return run(lstm_cell(w, project_input, project_state), x)["hidden_state"]


def gru(x: np.ndarray, w: Weights) -> np.ndarray:
    """The hidden states of a GRU (see `gru_cell`), every step, from zeros."""
    return run(gru_cell(w), x)["hidden_state"]


def simple_rnn(x: np.ndarray, w: Weights) -> np.ndarray:
    """The hidden states of a SimpleRNN with tanh, every step, from zeros."""
    return run(simple_rnn_cell(w), x)["hidden_state"]


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
