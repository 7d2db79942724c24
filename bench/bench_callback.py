"""Training overhead of WeightGatesCallback, as wall-time ratios over plain `fit` in one run.

For each model (`small_model.py`'s, and Bidirectional(LSTM(512))), times `fit` with no callback
(the baseline); with WeightGatesCallback logging every 10 batches weights only, weights and the
training step's own gradients (`gradients="train"`), and weights and probe-batch gradients; and
with `keras.callbacks.TensorBoard(histogram_freq=1)`. Each configuration fits twice with
the same model and callbacks: the first fit includes one-off costs (tracing the logging
functions), the second is the steady state of a long training. Configurations are interleaved
and repeated, and the median of each is used, because these machines are shared and noisy.
Python's garbage collector is off while a fit is timed (as `timeit` does): with the graphs of
earlier configurations still in memory, one full collection took up to a second, landing at
random in one configuration or another.

    .venv/bin/python bench/bench_callback.py [--repeats 3] [--quick]
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

keras = tf.keras


def big_model(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(512))(inputs)
    outputs = keras.layers.Dense(2)(hidden)
    return keras.Model(inputs, outputs)


def callbacks_for(config: str, logdir: str, x, y):
    if config == "plain fit":
        return []
    if config == "keras TensorBoard(histogram_freq=1)":
        return [keras.callbacks.TensorBoard(log_dir=logdir, histogram_freq=1)]
    gradients = {
        "weightgates, weights only": None,
        'weightgates, gradients="train"': "train",
        "weightgates, probe gradients": (x[:32], y[:32]),
    }[config]
    return [WeightGatesCallback(log_dir=logdir, update_freq=10, gradients=gradients)]


CONFIGS = (
    "plain fit",
    "weightgates, weights only",
    'weightgates, gradients="train"',
    "weightgates, probe gradients",
    "keras TensorBoard(histogram_freq=1)",
)


def time_fit(make_model, config, x, y, batch_size, epochs) -> tuple[float, float]:
    """(first fit, second fit) wall times for one configuration."""
    keras.utils.set_random_seed(0)
    model = make_model(x.shape[1], x.shape[2])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
    times = []
    with tempfile.TemporaryDirectory() as logdir:
        callbacks = callbacks_for(config, logdir, x, y)
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


def bench(name, make_model, x, y, batch_size, epochs, repeats) -> None:
    times = {config: [] for config in CONFIGS}
    for _ in range(repeats):
        for config in CONFIGS:
            times[config].append(time_fit(make_model, config, x, y, batch_size, epochs))
    first_base = statistics.median(t[0] for t in times["plain fit"])
    steady_base = statistics.median(t[1] for t in times["plain fit"])
    batches = epochs * int(np.ceil(len(x) / batch_size))
    print(f"\n{name}: {batches} batches per fit, median of {repeats}")
    print(f"  {'':40s} {'first fit':>18s} {'steady state':>20s}")
    for config in CONFIGS:
        first = statistics.median(t[0] for t in times[config])
        steady = statistics.median(t[1] for t in times[config])
        print(
            f"  {config:40s} {first:6.2f} s {first / first_base:6.3f}x"
            f" {steady:8.2f} s {steady / steady_base:6.3f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer batches (smoke run)")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    x, y = small_model.make_data(3200 // scale, steps=20, features=8, seed=0)
    bench("small model", small_model.make_model, x, y, 32, 2, args.repeats)
    x, y = small_model.make_data(1600 // scale, steps=20, features=8, seed=0)
    bench("Bidirectional(LSTM(512))", big_model, x, y, 32, 1, args.repeats)


if __name__ == "__main__":
    main()
