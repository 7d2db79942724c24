"""Helpers of the browser tests and the first-paint benchmark: a log directory written by the
real `WeightGatesCallback`, a real `tensorboard` process serving it, and headless Chromium with
the Weight Gates tab's iframe.

Nothing here is mocked: the runs are trained by Keras, read by TensorBoard (either loader) and
drawn by the tab's ES modules in `tensorboard_plugin_weightgates/static/`, served as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
TENSORBOARD = Path(sys.executable).with_name("tensorboard")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BASELINE_RUN = "baseline"
NAN_RUN = "nan_weights"
XSS_RUN = "<img src=x onerror=alert(1)>"
RUN_DIRS = (BASELINE_RUN, NAN_RUN, XSS_RUN)
NAN_CELL = (1, 2)
"""(row, column) of the forward LSTM kernel set to NaN in `NAN_RUN` before its last log."""


def run_name(run_dir: str) -> str:
    """TensorBoard's name of a run written with `log_dir=<logdir>/<run_dir>` (it adds /train)."""
    return f"{run_dir}/train"


@dataclass(frozen=True)
class LogInfo:
    """What the log directory holds, for the tests' expectations."""

    logdir: Path
    final_weights: dict[str, dict[str, np.ndarray]]
    """Run name -> weight path -> values after training (the last snapshot of each run)."""
    nan_step: int
    """Step of `NAN_RUN`'s last log, the one with a NaN weight."""


def write_logs(logdir: Path) -> LogInfo:
    """Trains a tiny Bidirectional(LSTM) -> GRU -> Dense model three times with the callback:
    a sane run with gradients, a run with one weight set to NaN before its last log, and a run
    whose directory name is HTML."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tensorboard_plugin_weightgates import WeightGatesCallback
    from tensorboard_plugin_weightgates.keras_writer.custom_loop import log_weights

    keras = tf.keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype("float32")
    y = np.stack([x[:, :, 0].sum(axis=1), x[:, :, 1].max(axis=1)], axis=1).astype("float32")
    final_weights: dict[str, dict[str, np.ndarray]] = {}
    nan_step = -1
    for index, run_dir in enumerate(RUN_DIRS):
        keras.utils.set_random_seed(index)
        inputs = keras.Input((5, 3))
        hidden = keras.layers.Bidirectional(
            keras.layers.LSTM(4, return_sequences=True), name="encoder"
        )(inputs)
        hidden = keras.layers.GRU(3, name="decoder")(hidden)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        callback = WeightGatesCallback(
            log_dir=str(logdir / run_dir),
            update_freq=2,
            snapshot_freq=4,
            gradients=(x[:16], y[:16]) if run_dir == BASELINE_RUN else None,
        )
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback])
        if run_dir == NAN_RUN:
            layer = model.get_layer("encoder").forward_layer
            kernel, recurrent, bias = layer.get_weights()
            kernel[NAN_CELL] = np.nan
            layer.set_weights([kernel, recurrent, bias])
            nan_step = int(model.optimizer.iterations.numpy()) + 1
            writer = tf.summary.create_file_writer(str(logdir / run_dir / "train"))
            log_weights(model, nan_step, writer, snapshot=True)
            writer.flush()
        final_weights[run_name(run_dir)] = {w.path: np.array(w.numpy()) for w in model.weights}
    return LogInfo(logdir=logdir, final_weights=final_weights, nan_step=nan_step)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def get_json(url: str, timeout: float = 10.0):
    return json.loads(get(url, timeout))


@contextlib.contextmanager
def tensorboard(
    logdir: Path,
    load_fast: bool | None,
    runs: tuple[str, ...],
    log_path: Path,
    timeout: float = 120.0,
) -> Iterator[str]:
    """Runs `tensorboard` on `logdir` (`--load_fast=true/false`, or TensorBoard's default for
    None) and yields its URL once the plugin's `index` lists every run of `runs` with weight
    snapshots; stops it afterwards. Its output goes to `log_path`."""
    load_fast_flag = [] if load_fast is None else [f"--load_fast={str(load_fast).lower()}"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(TENSORBOARD),
                "--logdir",
                str(logdir),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                *load_fast_flag,
                "--reload_interval=1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_runs(url, runs, process, log_path, timeout)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_runs(url, runs, process, log_path, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"tensorboard exited ({process.returncode}):\n{log_path.read_text()}"
            )
        try:
            index = get_json(f"{url}/data/plugin/weightgates/index", timeout=5)
            last = sorted(index["runs"])
            if all(run in index["runs"] for run in runs) and _snapshots_ready(index, runs):
                return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as error:
            last = repr(error)
        time.sleep(0.5)
    raise TimeoutError(f"tensorboard at {url} did not list runs {runs} in time (last: {last})")


def _snapshots_ready(index, runs) -> bool:
    """True when every run's first layer has weight snapshots (the loaders read in batches)."""
    for run in runs:
        layers = index["runs"][run]["layers"]
        kernels = layers[0]["directions"][0]["kernels"] if layers else []
        if not kernels or not kernels[0]["kinds"].get("weights", {}).get("snapshot_steps"):
            return False
    return True


def snapshot(url: str, **params) -> tuple[dict, np.ndarray]:
    """The `snapshot` route's header and data (planes x rows x cols), decoded in Python."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    body = get(f"{url}/data/plugin/weightgates/snapshot?{query}")
    (length,) = struct.unpack_from("<I", body, 0)
    header = json.loads(body[4 : 4 + length].decode("utf-8"))
    offset = (4 + length + 3) // 4 * 4
    data = np.frombuffer(body, dtype="<f4", offset=offset)
    return header, data.reshape(len(header["planes"]), header["rows"], header["cols"])


@contextlib.contextmanager
def chromium_browser() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright: one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def plugin_frame(page, timeout_ms: float = 60000):
    """The Weight Gates iframe of a TensorBoard page opened at #weightgates."""
    handle = page.wait_for_selector('iframe[src*="name=weightgates"]', timeout=timeout_ms)
    frame = handle.content_frame()
    if frame is None:
        raise RuntimeError("the Weight Gates iframe has no content frame")
    return frame


ATTENTION_RUN = "attention"
CONV_RUN = "convlstm"
WIDE_RUN = "lstm_wide"
NARROW_RUN = "lstm_narrow"
DIVERGED_RUN = "lstm_diverged"
LAYER_RUNS = (ATTENTION_RUN, CONV_RUN, WIDE_RUN, NARROW_RUN, DIVERGED_RUN)
NARROW_STEPS = (0, 2, 4)
DIVERGED_STEPS = (3, 4)
"""Steps of the two runs of one narrow `lstm`; every weight of `DIVERGED_RUN` is NaN."""


def write_layer_logs(logdir: Path) -> Path:
    """Writes, with the custom-loop `log_weights` (no training: these tests look at layouts),
    one run per layer type the tab lays out in its own way: a MultiHeadAttention layer
    (4 heads of 8), a ConvLSTM2D (3x3 window, 2 input channels, 4 filters), and three runs of
    an LSTM named `lstm`: 8 -> 16 units, and twice 3 -> 4 units, the second one diverged (NaN
    at every step) and first logged at step 3. Run names are the directory names."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tensorboard_plugin_weightgates.keras_writer.custom_loop import log_weights

    keras = tf.keras

    def model_of(shape, layer):
        inputs = keras.Input(shape)
        if isinstance(layer, keras.layers.MultiHeadAttention):
            return keras.Model(inputs, layer(inputs, inputs))
        return keras.Model(inputs, layer(inputs))

    keras.utils.set_random_seed(0)
    models = {
        ATTENTION_RUN: model_of((6, 32), keras.layers.MultiHeadAttention(4, 8, name="attention")),
        CONV_RUN: model_of(
            (5, 6, 6, 2), keras.layers.ConvLSTM2D(4, 3, padding="same", name="convlstm")
        ),
        WIDE_RUN: model_of((5, 8), keras.layers.LSTM(16, name="lstm")),
        NARROW_RUN: model_of((5, 3), keras.layers.LSTM(4, name="lstm")),
        DIVERGED_RUN: model_of((5, 3), keras.layers.LSTM(4, name="lstm")),
    }
    for run, model in models.items():
        steps = {NARROW_RUN: NARROW_STEPS, DIVERGED_RUN: DIVERGED_STEPS}.get(run, (0, 2))
        if run == DIVERGED_RUN:
            for weight in model.weights:
                weight.assign(np.full(weight.shape, np.nan, dtype="float32"))
        writer = tf.summary.create_file_writer(str(logdir / run))
        for step in steps:
            log_weights(model, step, writer, snapshot=True)
        writer.flush()
    return logdir
