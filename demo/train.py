"""Trains the demo runs that `make demo` opens in TensorBoard's Weight Gates tab.

Character-level language models on real text that every machine has: the Python standard
library's own source files (the analogue of the Linux kernel source in Karpathy, Johnson and
Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"). Each run reads 64 characters
and predicts every next one with Embedding -> LSTM or GRU (the layer named ``rnn`` in every run,
so that the tab compares them) -> Dense. Three runs: an LSTM and a GRU to compare, and an LSTM
whose learning rate is so high that its weights blow up to NaN, to show NaN detection. Every run
logs, on a fixed probe of held-out text, the gradients of its weights and the activations of
its recurrent layer with their gradients through time. About a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tensorboard_plugin_weightgates import WeightGatesCallback  # noqa: E402

keras = tf.keras

SOURCE_FILES = (
    "bisect.py",
    "colorsys.py",
    "fnmatch.py",
    "functools.py",
    "heapq.py",
    "shlex.py",
    "string.py",
    "textwrap.py",
)
"""Standard library modules read, in this order: present in every Python 3.9+, so the corpus
is fixed by the Python version."""

VOCABULARY = "\n" + "".join(chr(code) for code in range(32, 127))
"""Newline and printable ASCII; every other character (tabs, non-ASCII) is one extra token."""

SEQUENCE = 64
UNITS = 64

RUNS = {
    "lstm": ("LSTM", "tanh", lambda: keras.optimizers.Adam(5e-3)),
    "gru": ("GRU", "tanh", lambda: keras.optimizers.Adam(5e-3)),
    "lstm_relu_sgd_diverges": ("LSTM", "relu", lambda: keras.optimizers.SGD(2.0, momentum=0.9)),
}
"""Run name -> (recurrent layer, its activation, optimizer). An LSTM with a ReLU activation
has an unbounded cell state: with that learning rate it blows up to NaN in its first epoch."""


def read_corpus(stdlib: pathlib.Path | None = None) -> str:
    """The text of SOURCE_FILES from the running Python's standard library directory."""
    root = stdlib or pathlib.Path(os.path.dirname(os.__file__))
    return "\n".join((root / name).read_text(encoding="utf-8") for name in SOURCE_FILES)


def encode(text: str) -> np.ndarray:
    """Token ids: a character's position in VOCABULARY, len(VOCABULARY) for any other."""
    lookup = {char: i for i, char in enumerate(VOCABULARY)}
    return np.array([lookup.get(char, len(VOCABULARY)) for char in text], dtype="int32")


def windows(tokens: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of `length` inputs and their next characters as targets."""
    count = (len(tokens) - 1) // length
    x = tokens[: count * length].reshape(count, length)
    y = tokens[1 : count * length + 1].reshape(count, length)
    return x, y


def make_model(cell: str, activation: str = "tanh", vocabulary: int = len(VOCABULARY) + 1):
    inputs = keras.Input((SEQUENCE,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 24, name="embedding")(inputs)
    recurrent = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}[cell]
    hidden = recurrent(UNITS, activation=activation, return_sequences=True, name="rnn")(hidden)
    outputs = keras.layers.Dense(vocabulary, name="head")(hidden)
    return keras.Model(inputs, outputs, name=f"char_{cell.lower()}")


def train_run(name: str, logdir: str, train, probe, epochs: int) -> None:
    cell, activation, optimizer = RUNS[name]
    keras.utils.set_random_seed(0)
    model = make_model(cell, activation)
    model.compile(
        optimizer=optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    run_dir = os.path.join(logdir, name)
    callbacks = [
        WeightGatesCallback(
            log_dir=run_dir,
            update_freq=5,
            snapshot_freq=20,
            gradients=probe,
            activations=True,
        ),
        keras.callbacks.TensorBoard(log_dir=run_dir, update_freq=5),
    ]
    start = time.perf_counter()
    model.fit(*train, batch_size=64, epochs=epochs, verbose=0, callbacks=callbacks)
    loss = model.evaluate(*probe, verbose=0)
    print(f"  {name}: held-out loss {loss:.4g} nats/char ({time.perf_counter() - start:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logdir", default="demo/logs", help="where the runs are written")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--probe", type=int, default=32, help="held-out windows in the probe")
    args = parser.parse_args()
    shutil.rmtree(args.logdir, ignore_errors=True)
    x, y = windows(encode(read_corpus()), SEQUENCE)
    train = (x[: -args.probe], y[: -args.probe])
    probe = (x[-args.probe :], y[-args.probe :])
    print(
        f"training {len(RUNS)} demo runs on {len(train[0])} windows of {SEQUENCE} characters"
        f" of the standard library's source into {args.logdir}"
    )
    for name in RUNS:
        train_run(name, args.logdir, train, probe, args.epochs)


if __name__ == "__main__":
    main()
