"""Latency of the weightgates routes, against TensorBoard's own histograms route, in one run.

    .venv/bin/python bench/bench_routes.py [--repeats 7] [--stats-steps 1000]

Writes a temporary logdir with the real writer (`summary.log_weights`):

* ``whole``: LSTM(1024) on 1024 features (kernel 1024 x 4096: four 1024 x 1024 gates), 3
  snapshot steps with ``snapshot_max_cells=1024*1024``, so each gate is kept whole (block 1x1,
  a 32 MiB response);
* ``bounded``: the same with the default bound, 128 * 128 cells per gate (block 8x8, 512 KiB);
* ``long``: LSTM(32), 1,000 logged steps of statistics and of TensorBoard histograms.

It serves the logdir through TensorBoard's own WSGI app (werkzeug's test client, no sockets)
with each data provider TensorBoard can use (``--load_fast=false``: the Python multiplexer;
``--load_fast=true``: the Rust data server), both keeping every histogram step
(``--samples_per_plugin histograms=0``), and times the median of `--repeats` requests of:

* ``snapshot`` of the 1024 x 4096 kernel at its latest step, whole and bounded;
* ``stats`` of one gate (the input gate of the LSTM(32) kernel), 1,000 steps;
* TensorBoard's ``histograms`` route for that gate's histogram tag: it reads the same 1,000
  steps but answers with 51 of them (a fixed downsampling of the route);
* TensorBoard's histograms plugin asked for all 1,000 steps (``histograms_impl`` with
  ``downsample_to=1000``, JSON-encoded as its route does): the same steps as ours;
* ``index`` of the logdir, cold (first request) and warm (steps cached).

Ratios are against the histograms route and the 1,000-step histograms read of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from urllib.parse import urlencode

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402
from tensorboard import context as tb_context  # noqa: E402
from tensorboard import default, program  # noqa: E402
from tensorboard.backend import application  # noqa: E402
from tensorboard.backend.event_processing import data_ingester  # noqa: E402
from tensorboard.data import server_ingester  # noqa: E402
from tensorboard.plugins import base_plugin  # noqa: E402
from tensorboard.plugins.histogram import histograms_plugin  # noqa: E402
from werkzeug import test as werkzeug_test  # noqa: E402

from tensorboard_plugin_weightgates.keras_writer import custom_loop  # noqa: E402

keras = tf.keras
PREFIX = "/data/plugin/weightgates"
BIG_KERNEL = {"layer": "lstm", "direction": "forward", "kernel": "kernel", "kind": "weights"}


def lstm_model(units: int, features: int):
    inputs = keras.Input((4, features))
    outputs = keras.layers.LSTM(units, name="lstm")(inputs)
    return keras.Model(inputs, outputs)


def write_logdir(logdir: str, stats_steps: int) -> None:
    big = lstm_model(1024, 1024)
    for run, max_cells in (("whole", 1024 * 1024), ("bounded", None)):
        writer = tf.summary.create_file_writer(os.path.join(logdir, run))
        options = {} if max_cells is None else {"snapshot_max_cells": max_cells}
        for step in range(3):
            custom_loop.log_weights(big, step, writer, snapshot=True, **options)
        writer.close()
    small = lstm_model(32, 16)
    writer = tf.summary.create_file_writer(os.path.join(logdir, "long"))
    for step in range(stats_steps):
        custom_loop.log_weights(small, step, writer, snapshot=False, write_histograms=True)
    writer.close()


def configure(logdir: str, load_fast: str) -> program.TensorBoard:
    tensorboard = program.TensorBoard(plugins=default.get_plugins())
    tensorboard.configure(
        ["tensorboard", "--logdir", logdir, f"--load_fast={load_fast}", "--reload_interval=0"]
        + ["--samples_per_plugin", "histograms=0"],
        reload_task="blocking",
    )
    return tensorboard


@contextlib.contextmanager
def serve(logdir: str, load_fast: str):
    """TensorBoard's WSGI app over `logdir`, with the data provider `load_fast` selects."""
    tensorboard = configure(logdir, load_fast)
    flags = tensorboard.flags
    if load_fast == "true":
        ingester = server_ingester.SubprocessServerDataIngester(
            server_binary=server_ingester.get_server_binary(),
            logdir=flags.logdir,
            reload_interval=flags.reload_interval,
            channel_creds_type=flags.grpc_creds_type,
            samples_per_plugin=flags.samples_per_plugin,
        )
    else:
        ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        flags,
        tensorboard.plugin_loaders,
        ingester.data_provider,
        tensorboard.assets_zip_provider,
        getattr(ingester, "deprecated_multiplexer", None),
    )
    try:
        yield werkzeug_test.Client(app), ingester.data_provider
    finally:
        if load_fast == "true":
            ingester._stdin_handle.close()  # The data server exits when its stdin closes.


def wait_until_read(client, stats_steps: int) -> None:
    """The data server reads the logdir in the background: wait for the last step."""
    query = urlencode({"run": "long", **BIG_KERNEL, "gate": "input"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        response = client.get(f"{PREFIX}/stats?{query}")
        if response.status_code == 200 and len(response.json["gates"][0]["steps"]) == stats_steps:
            snapshot = client.get(f"{PREFIX}/snapshot?{urlencode({'run': 'whole', **BIG_KERNEL})}")
            if snapshot.status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError("the data server did not read the logdir in 300 s")


def timed(request, repeats: int) -> tuple[float, int]:
    """Median seconds of `request()` over `repeats` calls, and the response size."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        response = request()
        body = response.get_data()
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {body[:300]!r}")
        size = len(body)
    return statistics.median(times), size


class _Response:
    def __init__(self, body: str):
        self.status_code, self._body = 200, body.encode("utf-8")

    def get_data(self) -> bytes:
        return self._body


def histogram_tag(data_provider) -> str:
    listed = data_provider.list_tensors(
        tb_context.RequestContext(), experiment_id="", plugin_name="histograms"
    )
    (tag,) = [t for t in listed["long"] if t.endswith("/forward/kernel/input")]
    return tag


def measure(logdir: str, load_fast: str, repeats: int, stats_steps: int) -> dict[str, tuple]:
    with serve(logdir, load_fast) as (client, data_provider):
        wait_until_read(client, stats_steps)
        results = {"index (cold)": timed(lambda: client.get(f"{PREFIX}/index"), 1)}
        results["index (warm)"] = timed(lambda: client.get(f"{PREFIX}/index"), repeats)
        for run in ("whole", "bounded"):
            query = urlencode({"run": run, **BIG_KERNEL})
            results[f"snapshot 1024x4096 {run}"] = timed(
                lambda q=query: client.get(f"{PREFIX}/snapshot?{q}"), repeats
            )
        query = urlencode({"run": "long", **BIG_KERNEL, "gate": "input"})
        results[f"stats, one gate, {stats_steps} steps"] = timed(
            lambda: client.get(f"{PREFIX}/stats?{query}"), repeats
        )
        tag = histogram_tag(data_provider)
        hquery = urlencode({"run": "long", "tag": tag})
        results["histograms route (51 of those steps)"] = timed(
            lambda: client.get(f"/data/plugin/histograms/histograms?{hquery}"), repeats
        )
        context = base_plugin.TBContext(
            data_provider=data_provider, sampling_hints={"histograms": 0}
        )
        plugin = histograms_plugin.HistogramsPlugin(context)

        def every_histogram():
            body, _ = plugin.histograms_impl(
                tb_context.RequestContext(), tag, "long", "", downsample_to=stats_steps
            )
            return _Response(json.dumps(body))

        results[f"histograms plugin, all {stats_steps} steps"] = timed(every_histogram, repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stats-steps", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weightgates_bench_") as logdir:
        start = time.perf_counter()
        write_logdir(logdir, args.stats_steps)
        print(f"wrote the logdir in {time.perf_counter() - start:.1f} s", flush=True)
        for load_fast in ("false", "true"):
            results = measure(logdir, load_fast, args.repeats, args.stats_steps)
            route = results["histograms route (51 of those steps)"][0]
            same_steps = results[f"histograms plugin, all {args.stats_steps} steps"][0]
            print(f"\n--load_fast={load_fast}  (median of {args.repeats})")
            print(f"{'':42} {'ms':>9} {'bytes':>11} {'/hist route':>12} {'/hist all':>10}")
            for name, (seconds, size) in results.items():
                print(
                    f"{name:42} {seconds * 1e3:9.1f} {size:11d} "
                    f"{seconds / route:12.2f} {seconds / same_steps:10.2f}"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
