"""The small sequence model the benchmarks time (the demo's model before the demo became a
character-level language model): a synthetic task, a weighted running sum of noisy inputs and
a maximum, learnt by Bidirectional(LSTM(24)) -> GRU(16) -> Dense(2)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

keras = tf.keras


def make_data(samples: int, steps: int, features: int, seed: int):
    """Inputs and a target that needs memory of the whole sequence in both directions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, steps, features)).astype("float32")
    weights = np.linspace(-1.0, 1.0, features, dtype="float32")
    y = np.stack([(x @ weights).sum(axis=1), x[:, :, 0].max(axis=1)], axis=1)
    return x, y.astype("float32")


def make_model(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = keras.layers.Bidirectional(
        keras.layers.LSTM(24, return_sequences=True), name="encoder"
    )(inputs)
    hidden = keras.layers.GRU(16, name="decoder")(hidden)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    return keras.Model(inputs, outputs, name="small")
