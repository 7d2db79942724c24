"""Trains the demo runs that `make demo` opens in TensorBoard's Weight Gates tab.

A synthetic sequence task (predict a weighted running sum of noisy inputs) learnt by a
Bidirectional(LSTM) -> GRU -> Dense model, three times: two sane learning rates to compare, and
one so high that the weights blow up to NaN, to show NaN detection. About a minute on two CPU
cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tensorboard_plugin_weightgates import WeightGatesCallback  # noqa: E402

keras = tf.keras

RUNS = {
    "adam_lr_0.001": lambda: keras.optimizers.Adam(1e-3),
    "adam_lr_0.01": lambda: keras.optimizers.Adam(1e-2),
    "sgd_lr_20_diverges": lambda: keras.optimizers.SGD(20.0),
}


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
    return keras.Model(inputs, outputs, name="demo")


def train_run(name: str, logdir: str, x, y, epochs: int) -> None:
    keras.utils.set_random_seed(0)
    model = make_model(x.shape[1], x.shape[2])
    model.compile(optimizer=RUNS[name](), loss="mse")
    run_dir = os.path.join(logdir, name)
    callbacks = [
        WeightGatesCallback(
            log_dir=run_dir,
            update_freq=5,
            snapshot_freq=25,
            gradients=(x[:64], y[:64]),
        ),
        keras.callbacks.TensorBoard(log_dir=run_dir, update_freq=5),
    ]
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
    loss = model.evaluate(x[:256], y[:256], verbose=0)
    print(f"  {name}: final loss {loss:.4g} ({time.perf_counter() - start:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logdir", default="demo/logs", help="where the runs are written")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=1600)
    args = parser.parse_args()
    shutil.rmtree(args.logdir, ignore_errors=True)
    x, y = make_data(args.samples, steps=20, features=8, seed=0)
    print(f"training {len(RUNS)} demo runs into {args.logdir}")
    for name in RUNS:
        train_run(name, args.logdir, x, y, args.epochs)


if __name__ == "__main__":
    main()
