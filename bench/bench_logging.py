"""What logging costs a user, as ratios against baselines measured in the same run.

For each model (`small_model.py`, the former demo model; Bidirectional(LSTM(128),
return_sequences) -> GRU(128) -> Dense, 40 timesteps; 3 Bidirectional(LSTM(32)) + 3 GRU(32) +
Dense, 20 timesteps; Bidirectional(LSTM(512)); batch 32), built and trained two batches first so
that Keras' own tracing is done:

* first fit: the extra seconds of the first `fit` (2 epochs) with a new callback over plain
  `fit`, for weights only, `gradients="train"`, probe gradients and
  `keras.callbacks.TensorBoard(histogram_freq=1)`; the statistics function traced once per
  process is timed on its own at the start (the first weightgates fit of the run pays it);
  and, for the 3- and 7-layer models, the first fit of a freshly compiled model, plain and with
  `gradients="train"` (Keras traces its training step once either way);
* steady state: a second `fit` with the same callback, over a second plain `fit`, at
  `update_freq=10` (all modes) and `update_freq=1` (weights only and `gradients="train"`),
  four ways: as the sum of its batch times (`BatchClock`: from the first callback's
  `on_train_batch_begin` to the last one's `on_train_batch_end`, so every callback's work at a
  batch is in it), each batch's time the median of the repeats at its index (`batch_medians`),
  so that a stall of the machine in one repeat drops out while a log, at the same batches in
  every repeat, stays; as 1 plus the logged batches' excess over the typical batch minus a plain
  fit's, over the plain batch sum (`batch_excess`): the logs' cost measured within each fit; as
  the typical batch over a plain fit's, where a cost on every batch shows; and as the whole
  second fit, which also holds the logs at each epoch's end and at the end of training. A
  second plain configuration ("plain fit, again") shows what noise alone reads;
* per logged step: one host-side log of every weight's statistics (`GateLogger.log_weights`:
  compute, copy, encode, write) and of gradients, against the floor, moments and a 30-bucket
  histogram of every logged weight in one compiled function whose result is copied to the host;
* snapshots: one snapshot step per MiB of weights, and on the small model a long run (400
  batches, logging every 10) with `snapshot_freq` None, 100 and 10 over None.

Configurations are interleaved and repeated, and medians are used, because these machines are
shared and noisy. Python's garbage collector is off while a fit is timed (as `timeit` does).

    .venv/bin/python bench/bench_logging.py [--repeats 3] [--quick]

About 8 minutes on two idle CPU cores (12 under the load of other jobs); ``--quick``, one
repeat of half as many batches (Bi-LSTM(512) keeps its 10), about a third of that.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import small_model  # noqa: E402
import tensorflow as tf  # noqa: E402

from tensorboard_plugin_weightgates import WeightGatesCallback  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer import stats  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer.summary import GateLogger  # noqa: E402

keras = tf.keras
BATCH = 32
PLAIN = "plain fit"
AGAIN = "plain fit, again"
"""A second plain configuration, the last at `update_freq=10` in each round: its ratio to the
first is what this machine's noise alone makes of a configuration that costs nothing."""
MODES = (
    PLAIN,
    "weights only",
    'gradients="train"',
    "probe gradients",
    "keras TensorBoard(histogram_freq=1)",
    AGAIN,
)
EVERY_BATCH = ("weights only", 'gradients="train"')


def three_layers(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(128, return_sequences=True))(inputs)
    hidden = keras.layers.GRU(128)(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def seven_layers(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = inputs
    for _ in range(3):
        hidden = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True))(hidden)
    for i in range(3):
        hidden = keras.layers.GRU(32, return_sequences=i < 2)(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def big_lstm(steps: int, features: int):
    inputs = keras.Input((steps, features))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(512))(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def callbacks_for(mode: str, logdir: str, probe, update_freq: int, snapshot_freq="epoch"):
    if mode in (PLAIN, AGAIN):
        return []
    if mode.startswith("keras"):
        return [keras.callbacks.TensorBoard(log_dir=logdir, histogram_freq=1)]
    gradients = {"weights only": None, 'gradients="train"': "train", "probe gradients": probe}
    return [
        WeightGatesCallback(
            log_dir=logdir,
            update_freq=update_freq,
            snapshot_freq=snapshot_freq,
            gradients=gradients[mode],
        )
    ]


class BatchClock:
    """Times every batch of a `fit` with all its callbacks' work: `callbacks(others)` puts one
    callback before `others`, which starts the clock at `on_train_batch_begin`, and one after
    them, which stops it at `on_train_batch_end` (Keras calls callbacks in list order)."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def callbacks(self, others: list) -> list:
        clock = self

        class Start(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                clock._start = time.perf_counter()

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.times.append(time.perf_counter() - clock._start)

        return [Start(), *others, Stop()]


def timed_fit(model, x, y, callbacks, clock: BatchClock | None = None) -> float:
    gc.collect()
    gc.disable()
    try:
        if clock is not None:
            callbacks = clock.callbacks(callbacks)
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start
    finally:
        gc.enable()


def batch_medians(runs: list[list[float]]) -> list[float]:
    """Each batch index's median over repeated fits of that batch's time. Every fit of a model
    has a multiple of 10 batches (`fits`), so that its logs at `update_freq=10` fall on the same
    batch indices in every repeat."""
    return [statistics.median(times) for times in zip(*runs)]


def batch_excess(medians: list[float]) -> float:
    """How much longer than the typical (median) batch the slower batches take, summed, of
    `batch_medians`. With `update_freq=10` a log lands on one batch in ten, so the excess over
    a plain fit's is the cost of the logs measured within each fit: a machine that runs every
    batch a few percent slower in one configuration than in another, as these shared ones do,
    does not move it. It is a lower bound: a cost on every batch moves the typical batch
    instead, and work at an epoch's end or at the end of training is in no batch."""
    typical = statistics.median(medians)
    return sum(max(0.0, m - typical) for m in medians)


def prepared(make_model, x, y):
    """A compiled model trained two batches, so that Keras has traced its training step."""
    keras.utils.set_random_seed(0)
    model = make_model(x.shape[1], x.shape[2])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    return model


def fits(name, make_model, x, y, repeats, every_batch) -> dict:
    """{(mode, update_freq): [(first fit, second fit, second fit's batch times), ...]} on one
    prepared model."""
    if 2 * math.ceil(len(x) / BATCH) % 10:
        raise ValueError("a fit must have a multiple of 10 batches: see batch_medians")
    model = prepared(make_model, x, y)
    probe = (x[:BATCH], y[:BATCH])
    plan = [(mode, 10) for mode in MODES]
    if every_batch:
        plan += [(PLAIN, 1)] + [(mode, 1) for mode in EVERY_BATCH]
    times: dict = {key: [] for key in plan}
    for _ in range(repeats):
        for mode, freq in plan:
            with tempfile.TemporaryDirectory() as logdir:
                callbacks = callbacks_for(mode, logdir, probe, freq)
                first = timed_fit(model, x, y, callbacks)
                clock = BatchClock()
                second = timed_fit(model, x, y, callbacks, clock)
            times[(mode, freq)].append((first, second, clock.times))
    return {"model": model, "times": times}


def report_fits(name, batches, result, repeats) -> None:
    times = result["times"]
    batches_of = {key: batch_medians([t[2] for t in v]) for key, v in times.items()}
    median = {
        key: [statistics.median(t[i] for t in v) for i in (0, 1)] + [sum(batches_of[key])]
        for key, v in times.items()
    }
    excess = {key: batch_excess(m) for key, m in batches_of.items()}
    typical = {key: statistics.median(m) for key, m in batches_of.items()}
    plain_first, plain_fit, plain_batches = median[(PLAIN, 10)]
    print(f"\n{name}: {batches} batches per fit (2 epochs), median of {repeats}")
    print(
        f"  {'':38s} {'first fit':>26s} {'steady: batches, update_freq=10':>32s}"
        f" {'logged batches':>15s} {'typical batch':>14s} {'second fit':>18s}"
    )
    for mode in MODES:
        first, fit, batch_time = median[(mode, 10)]
        extra = (excess[(mode, 10)] - excess[(PLAIN, 10)]) / plain_batches
        print(
            f"  {mode:38s} {first:6.2f} s {first - plain_first:+6.2f} s {first / plain_first:5.2f}x"
            f" {batch_time:17.3f} s {batch_time / plain_batches:6.3f}x"
            f" {1 + extra:14.3f}x {typical[(mode, 10)] / typical[(PLAIN, 10)]:13.3f}x"
            f" {fit:9.2f} s {fit / plain_fit:6.3f}x"
        )
    if (PLAIN, 1) in median:
        _, base_fit, base_batches = median[(PLAIN, 1)]
        for mode in EVERY_BATCH:
            _, fit, batch_time = median[(mode, 1)]
            print(
                f"  {mode + ', update_freq=1':38s} {'':26s} {batch_time:17.3f} s"
                f" {batch_time / base_batches:6.3f}x {fit:9.2f} s {fit / base_fit:6.3f}x"
            )


def floor_function(variables):
    """Moments and a 30-bucket histogram of each variable, in one compiled function."""

    @tf.function(autograph=False)
    def floor():
        out = []
        for v in variables:
            values = tf.reshape(tf.cast(v, tf.float32), [-1])
            mean, variance = tf.nn.moments(values, axes=[0])
            low, high = tf.reduce_min(values), tf.reduce_max(values)
            histogram = tf.histogram_fixed_width(values, tf.stack([low, high + 1e-6]), nbins=30)
            out.append(
                tf.concat(
                    [tf.stack([mean, variance, low, high]), tf.cast(histogram, tf.float32)], 0
                )
            )
        return tf.stack(out)

    return floor


def per_log(name, model, repeats) -> None:
    with tempfile.TemporaryDirectory() as logdir:
        writer = tf.summary.create_file_writer(logdir, max_queue=1000, flush_millis=5000)
        logger = GateLogger(model, writer)
        variables = list({id(g.variable): g.variable for g in logger.groups}.values())
        floor = floor_function(variables)
        gradients = [tf.ones_like(g.variable) * 1e-3 for g in logger.trainable_groups]
        mib = sum(int(np.prod(v.shape)) * 4 for v in variables) / 2**20
        calls = {
            "floor": lambda: floor().numpy(),
            "weights": lambda: logger.log_weights(1),
            "gradients": lambda: logger.log_gradients(gradients, 1),
            "snapshot": lambda: logger.log_weights(1, statistics=False, snapshot_values=True),
        }
        for call in calls.values():
            call()
        samples: dict = {key: [] for key in calls}
        for _ in range(repeats):
            for key, call in calls.items():
                start = time.perf_counter()
                call()
                samples[key].append(time.perf_counter() - start)
        writer.close()
    ms = {key: statistics.median(v) * 1e3 for key, v in samples.items()}
    slices = sum(len(g.slices) for g in logger.groups)
    print(
        f"  per log, {name} ({slices} slices, {mib:.1f} MiB): floor {ms['floor']:.2f} ms; "
        f"weights {ms['weights']:.2f} ms ({ms['weights'] / ms['floor']:.2f}x floor); "
        f"gradients {ms['gradients']:.2f} ms ({ms['gradients'] / ms['floor']:.2f}x); "
        f"snapshot {ms['snapshot']:.1f} ms ({ms['snapshot'] / max(mib, 1e-9):.1f} ms/MiB)"
    )


def long_run(x, y, repeats) -> None:
    """Steady state of a 400-batch run of the small model at snapshot_freq None, 100, 10: the
    sum of batch times, the logged batches' excess (as in `fits`) and the whole fit."""
    model = prepared(small_model.make_model, x, y)
    plans = [None, 100, 10]
    times: dict = {freq: [] for freq in plans}
    for _ in range(repeats):
        for freq in plans:
            with tempfile.TemporaryDirectory() as logdir:
                callbacks = callbacks_for("weights only", logdir, None, 10, snapshot_freq=freq)
                timed_fit(model, x, y, callbacks)
                clock = BatchClock()
                times[freq].append((timed_fit(model, x, y, callbacks, clock), clock.times))
    batches_of = {freq: batch_medians([t[1] for t in v]) for freq, v in times.items()}
    batch_time = {freq: sum(m) for freq, m in batches_of.items()}
    excess = {freq: batch_excess(m) for freq, m in batches_of.items()}
    fit = {freq: statistics.median(t[0] for t in v) for freq, v in times.items()}
    line = ", ".join(
        f"snapshot_freq={freq}: batches {batch_time[freq] / batch_time[None]:.3f}x, logged "
        f"batches {1 + (excess[freq] - excess[None]) / batch_time[None]:.3f}x, "
        f"whole fit {fit[freq] / fit[None]:.3f}x"
        for freq in plans[1:]
    )
    batches = 2 * len(x) // BATCH
    print(
        f"\nlong run, small model, {batches} batches, weights only, over snapshot_freq=None: {line}"
    )


def fresh_fits(name, make_model, x, y, repeats) -> None:
    """First fit of a freshly compiled model, plain and with `gradients="train"`: there Keras
    traces its training step once either way, with the logging branch in it or not. (On a
    model already trained, attaching the branch costs Keras' own trace once more.)"""
    times: dict = {PLAIN: [], 'gradients="train"': []}
    probe = (x[:BATCH], y[:BATCH])
    for _ in range(repeats):
        for mode in times:
            keras.utils.set_random_seed(0)
            model = make_model(x.shape[1], x.shape[2])
            model.compile(optimizer="adam", loss="mse")
            with tempfile.TemporaryDirectory() as logdir:
                times[mode].append(timed_fit(model, x, y, callbacks_for(mode, logdir, probe, 10)))
    plain = statistics.median(times[PLAIN])
    train = statistics.median(times['gradients="train"'])
    print(
        f"  fresh model, first fit with Keras' own tracing: plain {plain:.2f} s, "
        f'gradients="train" {train:.2f} s ({train - plain:+.2f} s, {train / plain:.2f}x)'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer batches and one repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    scale = 2 if args.quick else 1
    start = time.perf_counter()
    stats.compiled_packed_stats(tf.float32).get_concrete_function()
    print(f"statistics function traced once per process in {time.perf_counter() - start:.2f} s")
    models = [
        ("small model, 20 steps", small_model.make_model, 20, 60 // scale, True),
        ("Bi-LSTM(128) -> GRU(128) -> Dense, 40 steps", three_layers, 40, 20 // scale, True),
        ("3 Bi-LSTM(32) + 3 GRU(32) + Dense, 20 steps", seven_layers, 20, 20 // scale, False),
        ("Bidirectional(LSTM(512)), 20 steps", big_lstm, 20, 10, False),
    ]
    for name, make_model, steps, batches, every_batch in models:
        x, y = small_model.make_data(batches * BATCH // 2, steps=steps, features=8, seed=0)
        result = fits(name, make_model, x, y, repeats, every_batch)
        report_fits(name, batches, result, repeats)
        per_log(name, result["model"], 10 if args.quick else 30)
        if make_model in (three_layers, seven_layers):
            fresh_fits(name, make_model, x, y, 1)
    x, y = small_model.make_data(200 * BATCH // scale, steps=20, features=8, seed=0)
    long_run(x, y, repeats)
    print(f"\nbench time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
