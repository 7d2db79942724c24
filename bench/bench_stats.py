"""Cost of `gate_stats` on one large LSTM kernel, as a ratio over a plain reduction in one run.

Times, inside `tf.function`, `gate_stats` of a ``[1024, 4096]`` float32 kernel with 4 gates
(an LSTM(1024) recurrent kernel) against the same function doing only `tf.reduce_sum` of it
(one pass over the values, the least any statistic can cost). Also times `gate_stats` with the
previous step's kernel (update sizes, as for weights) and with NaNs present (the masked path).
Calls are interleaved and repeated, and the median of each is used, because these machines are
shared and noisy.

    .venv/bin/python bench/bench_stats.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tensorboard_plugin_weightgates.format import options  # noqa: E402
from tensorboard_plugin_weightgates.keras_writer.stats import gate_stats  # noqa: E402

SHAPE = (1024, 4096)
GATES = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    kernel = tf.Variable(tf.random.stateless_normal(SHAPE, seed=(0, 0)))
    previous = tf.Variable(kernel + 0.01)
    with_nan = tf.Variable(tf.tensor_scatter_nd_update(kernel, [[3, 5]], [float("nan")]))

    def stats_of(values, before=None):
        return gate_stats(values, GATES, options.DEFAULT_BINS, 1e-3, previous=before)

    functions = {
        "tf.reduce_sum (baseline)": tf.function(lambda: tf.reduce_sum(kernel)),
        "gate_stats": tf.function(lambda: stats_of(kernel)),
        "gate_stats with previous": tf.function(lambda: stats_of(kernel, previous)),
        "gate_stats with a NaN": tf.function(lambda: stats_of(with_nan)),
    }
    times: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        function().numpy()  # trace and warm up
    for _ in range(args.repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function().numpy()
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["tf.reduce_sum (baseline)"])
    device = tf.config.list_logical_devices()[-1].name
    print(f"{SHAPE} float32 kernel, gates={GATES}, bins={options.DEFAULT_BINS}, on {device}")
    print(f"median of {args.repeats} interleaved calls")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:28s} {median * 1e3:8.2f} ms   {median / base:6.1f}x baseline")


if __name__ == "__main__":
    main()
