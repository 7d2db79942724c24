"""Cost of logging activations, as ratios against baselines measured in the same run.

1. One activations log (the probe pass: the model on the probe batch with every recurrent
   layer recomputed and checked, dL/dh_t from one backward pass, statistics on the device; then
   the records written) against one compiled forward and backward pass of the model on the same
   probe batch (gradients of the loss with respect to every weight), the goal being 1.5x or
   less. Also with the maps of one sample (snapshot steps), and the one-off tracing of the pass.
   Models: `small_model.py`'s (Bidirectional(LSTM(24)) -> GRU(16) -> Dense), a character-level LSTM
   (Embedding -> LSTM(128) -> Dense(96), 64 steps) and Bidirectional(LSTM(512)).
2. Training slowdown at ``update_freq=10`` on the small model: `fit` with WeightGatesCallback
   logging weights and probe gradients, with and without ``activations=True`` (the same probe),
   against plain `fit`; the first fit includes tracing, the second is the steady state.

Timings are interleaved and repeated, and medians are used (these machines are shared).

    .venv/bin/python bench/bench_activations.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import small_model  # noqa: E402
import tensorflow as tf  # noqa: E402

from tensorboard_plugin_weightgates import WeightGatesCallback  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer.activation_logger import (  # noqa: E402
    ActivationLogger,
)

keras = tf.keras


def char_lstm(steps: int, vocabulary: int = 96):
    inputs = keras.Input((steps,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 32)(inputs)
    hidden = keras.layers.LSTM(128, return_sequences=True)(hidden)
    return keras.Model(inputs, keras.layers.Dense(vocabulary)(hidden))


def big_model(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(512))(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def forward_backward(model, loss):
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=False))
        return tape.gradient(value, variables)

    return step


def timed(function) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = function()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)
        return time.perf_counter() - start
    finally:
        gc.enable()


def bench_log(name, model, x, y, loss, repeats) -> None:
    x, y = tf.constant(x), tf.constant(y)
    baseline = forward_backward(model, loss)
    with tempfile.TemporaryDirectory() as logdir:
        writer = tf.summary.create_file_writer(logdir)
        logger = ActivationLogger(model, writer, loss=loss)
        tracing = {
            "forward and backward pass": timed(lambda: baseline(x, y)),
            "activations log": timed(lambda: logger.log(0, x, y, statistics=True)),
            "activations log with maps": timed(
                lambda: logger.log(0, x, y, statistics=True, maps=True)
            ),
        }
        runs = {
            "forward and backward pass": lambda: baseline(x, y),
            "activations log": lambda: logger.log(1, x, y, statistics=True),
            "activations log with maps": lambda: logger.log(1, x, y, statistics=True, maps=True),
        }
        times: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(repeats):
            for key, run in runs.items():
                times[key].append(timed(run))
        writer.close()
    base = statistics.median(times["forward and backward pass"])
    batch = tf.nest.flatten(x)[0].shape[0]
    print(f"\n{name}: probe batch {batch}, median of {repeats}")
    print(f"  {'':30s} {'one call':>12s} {'ratio':>8s} {'first call (tracing)':>22s}")
    for key, values in times.items():
        median = statistics.median(values)
        print(f"  {key:30s} {median * 1e3:9.1f} ms {median / base:7.2f}x {tracing[key]:19.2f} s")


CONFIGS = (
    "plain fit",
    "weightgates, probe gradients",
    "weightgates, probe gradients + activations",
)


def time_fit(config, x, y, batch_size, epochs) -> tuple[float, float]:
    keras.utils.set_random_seed(0)
    model = small_model.make_model(x.shape[1], x.shape[2])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
    times = []
    with tempfile.TemporaryDirectory() as logdir:
        callbacks = []
        if config != "plain fit":
            callbacks = [
                WeightGatesCallback(
                    log_dir=logdir,
                    update_freq=10,
                    snapshot_freq=None,
                    gradients=(x[:64], y[:64]),
                    activations=config.endswith("activations") or None,
                )
            ]
        for _ in range(2):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                model.fit(
                    x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=callbacks
                )
                times.append(time.perf_counter() - start)
            finally:
                gc.enable()
    return times[0], times[1]


def bench_training(x, y, batch_size, epochs, repeats) -> None:
    times = {config: [] for config in CONFIGS}
    for _ in range(repeats):
        for config in CONFIGS:
            times[config].append(time_fit(config, x, y, batch_size, epochs))
    first_base = statistics.median(t[0] for t in times["plain fit"])
    steady_base = statistics.median(t[1] for t in times["plain fit"])
    batches = epochs * int(np.ceil(len(x) / batch_size))
    print(
        f"\ntraining the small model, update_freq=10: {batches} batches per fit,"
        f" median of {repeats}"
    )
    print(f"  {'':45s} {'first fit':>18s} {'steady state':>20s}")
    for config in CONFIGS:
        first = statistics.median(t[0] for t in times[config])
        steady = statistics.median(t[1] for t in times[config])
        print(
            f"  {config:45s} {first:6.2f} s {first / first_base:6.3f}x"
            f" {steady:8.2f} s {steady / steady_base:6.3f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller models (smoke run)")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    mse = keras.losses.MeanSquaredError()
    keras.utils.set_random_seed(0)
    x, y = small_model.make_data(64, steps=20, features=8, seed=0)
    bench_log("small model", small_model.make_model(20, 8), x, y, mse, args.repeats)
    steps = 64 // scale
    tokens = np.random.default_rng(0).integers(0, 96, size=(32, steps + 1)).astype("int32")
    crossentropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    bench_log(
        f"character LSTM(128), {steps} steps",
        char_lstm(steps),
        tokens[:, :-1],
        tokens[:, 1:],
        crossentropy,
        args.repeats,
    )
    if not args.quick:
        x, y = small_model.make_data(32, steps=20, features=8, seed=0)
        bench_log("Bidirectional(LSTM(512))", big_model(20, 8), x, y, mse, args.repeats)
    x, y = small_model.make_data(3200 // scale, steps=20, features=8, seed=0)
    bench_training(x, y, 32, 2, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
