"""Tests of the loader: its entry point, the sampling it asks of TensorBoard, and that every
logged step comes back through both of TensorBoard's data paths (the Python multiplexer,
`--load_fast=false`, and the Rust data server, `--load_fast=true`), in process and through a
real `tensorboard` process."""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from importlib import metadata as importlib_metadata

import pytest
from test_reader import (
    CTX,
    KernelSpec,
    LoggedModel,
    event_files,
    kernel_infos,
    kernel_records,
    lstm_model,
    write_events,
    write_run,
)

from tensorboard_plugin_weightgates.backend import loader, reader, routes
from tensorboard_plugin_weightgates.format import metadata

pytest.importorskip("tensorflow")

from tensorboard import default, program  # noqa: E402
from tensorboard.backend.event_processing import data_ingester  # noqa: E402
from tensorboard.data import server_ingester  # noqa: E402

STATS_STEPS = tuple(range(150))
SNAPSHOT_STEPS = tuple(range(120))
"""More stats steps than TensorBoard keeps by default (10 in the multiplexer, 100 in the data
server) and more snapshot steps than the 100 the loader asks to keep."""
LSTM_KEY = ("lstm", None, "forward", "kernel")
TAGS = 3 * 4
"""Stats (and snapshot) tags of `lstm_model`: kernel, recurrent kernel and bias, 4 gates each."""


def configure(*argv: str, plugins=None) -> program.TensorBoard:
    """TensorBoard configured from command-line flags, as `tensorboard` does it."""
    tensorboard = program.TensorBoard(plugins=default.get_plugins() if plugins is None else plugins)
    tensorboard.configure(["tensorboard", *argv])
    return tensorboard


@pytest.fixture(scope="module")
def long_logdir(tmp_path_factory) -> str:
    logdir = str(tmp_path_factory.mktemp("logs"))
    logged = LoggedModel(os.path.join(logdir, "run"), lstm_model, gradients=False)
    logged.train(STATS_STEPS, SNAPSHOT_STEPS).writer.close()
    return logdir


def test_entry_point_loads_the_loader():
    (entry_point,) = [
        e
        for e in importlib_metadata.entry_points(group="tensorboard_plugins")
        if e.name == "weightgates"
    ]

    assert entry_point.load() is loader.WeightGatesLoader
    assert loader.WeightGatesLoader in default.get_dynamic_plugins()


def test_fix_flags_asks_for_weightgates_sampling():
    flags = configure("--logdir", "/tmp/none").flags

    assert flags.samples_per_plugin == metadata.SAMPLES_PER_PLUGIN


def test_users_samples_per_plugin_wins():
    flags = configure(
        "--logdir", "/tmp/none", "--samples_per_plugin", "weightgates=7,images=3"
    ).flags

    assert flags.samples_per_plugin == {
        **metadata.SAMPLES_PER_PLUGIN,
        "weightgates": 7,
        "images": 3,
    }


def _read_back(data_provider) -> tuple[list[list[int]], tuple[int, ...]]:
    """Every gate's stats steps and the snapshot steps of the LSTM kernel."""
    kernel = reader.list_kernels(data_provider, CTX, "").kernel("run", LSTM_KEY)
    stats = reader.read_stats(data_provider, CTX, "", kernel, "weights")
    snapshot = reader.read_snapshot(data_provider, CTX, "", kernel, "weights")
    return [g.steps.tolist() for g in stats.gates], snapshot.steps


def _multiplexer_provider(tensorboard: program.TensorBoard):
    """The data provider `tensorboard --load_fast=false` builds from its flags."""
    tensorboard.flags.reload_task = "blocking"
    ingester = data_ingester.LocalDataIngester(tensorboard.flags)
    ingester.start()
    return ingester.data_provider


def _assert_sampled_as_asked(stats_steps, snapshot_steps):
    assert stats_steps == [list(STATS_STEPS)] * 4
    assert len(snapshot_steps) == metadata.SAMPLES_PER_PLUGIN[metadata.SNAPSHOT_PLUGIN_NAME]
    assert set(snapshot_steps) <= set(SNAPSHOT_STEPS)
    assert snapshot_steps[-1] == SNAPSHOT_STEPS[-1]


def test_multiplexer_keeps_every_stats_step(long_logdir):
    argv = ("--logdir", long_logdir, "--load_fast=false", "--reload_interval=0")
    without = configure(*argv, plugins=default.get_static_plugins())

    stats_steps, snapshot_steps = _read_back(_multiplexer_provider(configure(*argv)))
    default_stats, _ = _read_back(_multiplexer_provider(without))

    _assert_sampled_as_asked(stats_steps, snapshot_steps)
    assert len(default_stats[0]) == 10  # what TensorBoard keeps without the loader


@contextlib.contextmanager
def _data_server_provider(flags, loaded=None):
    """The data provider `tensorboard --load_fast=true` builds from its flags: the Rust data
    server as a subprocess, once `loaded(data_provider)` (default: it has read the whole
    `long_logdir`)."""
    loaded = loaded or _loaded
    ingester = server_ingester.SubprocessServerDataIngester(
        server_binary=server_ingester.get_server_binary(),
        logdir=flags.logdir,
        reload_interval=flags.reload_interval,
        channel_creds_type=flags.grpc_creds_type,
        samples_per_plugin=flags.samples_per_plugin,
    )
    ingester.start()
    try:
        _wait_for(lambda: loaded(ingester.data_provider), "the data server to read the logdir")
        yield ingester.data_provider
    finally:
        ingester._stdin_handle.close()  # The data server exits when its stdin closes.


def _loaded(data_provider) -> bool:
    """Whether every tag has been read up to its last step."""
    for plugin_name, last in (
        (metadata.PLUGIN_NAME, STATS_STEPS[-1]),
        (metadata.SNAPSHOT_PLUGIN_NAME, SNAPSHOT_STEPS[-1]),
    ):
        listed = data_provider.list_tensors(CTX, experiment_id="", plugin_name=plugin_name)
        series = listed.get("run", {}).values()
        if len(series) != TAGS or any(s.max_step != last for s in series):
            return False
    return True


def _wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_data_server_keeps_every_stats_step(long_logdir):
    argv = ("--logdir", long_logdir, "--load_fast=true", "--reload_interval=0")
    without = configure(*argv, plugins=default.get_static_plugins()).flags

    with _data_server_provider(configure(*argv).flags) as data_provider:
        stats_steps, snapshot_steps = _read_back(data_provider)
    with _data_server_provider(without) as data_provider:
        default_stats, _ = _read_back(data_provider)

    _assert_sampled_as_asked(stats_steps, snapshot_steps)
    assert len(default_stats[0]) == 100  # what the data server keeps without the loader


def test_data_server_reads_past_a_corrupt_run(tmp_path):
    kernels = [KernelSpec(kernel_infos())]
    write_run(str(tmp_path / "good"), kernels)
    write_run(str(tmp_path / "broken"), kernels)
    (path,) = event_files(str(tmp_path / "broken"))
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 64)
        f.truncate(size - 10)
    flags = configure("--logdir", str(tmp_path), "--load_fast=true", "--reload_interval=0").flags

    def good_run_read(data_provider):
        index = reader.read_index(data_provider, CTX, "")
        good = index.runs.get("good", ())
        return index if good and good[0].steps["weights"].stats_steps == (0, 10, 20) else None

    with _data_server_provider(flags, good_run_read) as data_provider:
        index = _wait_for(lambda: good_run_read(data_provider), "the good run")
        (good,) = index.runs["good"]
        stats = reader.read_stats(data_provider, CTX, "", good.kernel, "weights")
        for entry in index.runs.get("broken", ()):  # whatever the data server could read
            if "weights" in entry.kernel.stats:
                reader.read_stats(data_provider, CTX, "", entry.kernel, "weights")

    assert [g.steps.tolist() for g in stats.gates] == [[0, 10, 20]] * 4


def test_last_record_of_a_step_wins_with_either_loader(tmp_path):
    """A run logged to step 20, then again from step 10: both loaders serve steps 0, 10, 15,
    with the values written last (the multiplexer keeps every record, the data server
    replaces the later steps; the reader makes them agree)."""
    infos = kernel_infos(gates=("a", "b"))
    records = [
        *kernel_records([KernelSpec(infos, stats_steps=(0, 10, 20), snapshot_steps=(0, 10, 20))]),
        *kernel_records([KernelSpec(infos, stats_steps=(10, 15), snapshot_steps=(10, 15))], 100),
    ]
    write_events(str(tmp_path / "run"), records)
    argv = ("--logdir", str(tmp_path), "--reload_interval=0")

    def read(data_provider):
        index = reader.read_index(data_provider, CTX, "")
        kernel = index.runs["run"][0].kernel
        stats = reader.read_stats(data_provider, CTX, "", kernel, "weights")
        snapshot = reader.read_snapshot(data_provider, CTX, "", kernel, "weights", step=10)
        return (
            index.runs["run"][0].steps["weights"],
            [(g.steps.tolist(), g.values[:, 1].tolist()) for g in stats.gates],
            (snapshot.steps, snapshot.values[0, 0].tolist()),
        )

    def fully_read(data_provider):
        listed = data_provider.list_tensors(CTX, experiment_id="", plugin_name=metadata.PLUGIN_NAME)
        return [s.max_step for s in listed.get("run", {}).values()] == [15, 15]

    multiplexer = read(_multiplexer_provider(configure(*argv, "--load_fast=false")))
    with _data_server_provider(configure(*argv, "--load_fast=true").flags, fully_read) as provider:
        data_server = read(provider)

    expected = (
        reader.KindSteps((0, 10, 15), (0, 10, 15)),
        [([0, 10, 15], [0, 110, 115]), ([0, 10, 15], [1, 111, 116])],
        ((0, 10, 15), [110, 110, 111, 111]),
    )
    assert multiplexer == data_server == expected


class TensorBoardProcess:
    """A real `tensorboard` process on a free port, stopped when closed."""

    def __init__(self, logdir: str, load_fast: str):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", logdir]
            + ["--host", "127.0.0.1", "--port", "0", f"--load_fast={load_fast}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        self.url = None
        for line in self._process.stderr:
            match = re.search(r"TensorBoard \S+ at (http://\S+/) ", line)
            if match:
                self.url = match.group(1)
                break
        if self.url is None:
            self._process.wait()
            raise RuntimeError(f"tensorboard exited with {self._process.returncode}")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.read()

    def request(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body of any request, errors included."""
        request = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read()

    def close(self):
        self._process.terminate()
        self._process.wait(timeout=30)
        self._process.stderr.close()


@pytest.fixture(scope="module", params=["false", "true"], ids=["load_fast_false", "load_fast_true"])
def tensorboard_process(request, long_logdir):
    process = TensorBoardProcess(long_logdir, request.param)
    yield process
    process.close()


def _listing_enabled(process: TensorBoardProcess) -> bool:
    return json.loads(process.get("data/plugins_listing"))["weightgates"]["enabled"]


def test_real_tensorboard_lists_the_plugin_as_active(tensorboard_process):
    assert _wait_for(lambda: _listing_enabled(tensorboard_process), "the plugin to be active")


def test_real_tensorboard_serves_every_step(tensorboard_process):
    query = "run=run&layer=lstm&direction=forward&kernel=kernel&kind=weights"

    def read_back():
        try:
            stats = json.loads(tensorboard_process.get(f"data/plugin/weightgates/stats?{query}"))
            body = tensorboard_process.get(f"data/plugin/weightgates/snapshot?{query}")
        except urllib.error.HTTPError:
            return None  # Not read yet.
        (length,) = struct.unpack_from("<I", body)
        header = json.loads(body[4 : 4 + length])
        done = header["step"] == SNAPSHOT_STEPS[-1] and len(stats["gates"][3]["steps"]) == 150
        return (stats, header) if done else None

    stats, header = _wait_for(read_back, "every step to be served")

    _assert_sampled_as_asked([g["steps"] for g in stats["gates"]], tuple(header["steps"]))
    index = json.loads(tensorboard_process.get("data/plugin/weightgates/index"))
    kernel = index["runs"]["run"]["layers"][0]["directions"][0]["kernels"][0]
    assert kernel["kinds"]["weights"]["stats_steps"] == list(STATS_STEPS)
    assert kernel["kinds"]["weights"]["snapshot_steps"] == header["steps"]


def test_real_tensorboard_answers_head_and_long_urls(tensorboard_process):
    """Through TensorBoard's own HTTP server: HEAD is GET without the body, a URL over the
    plugin's limit is its JSON 414, and a request line over 64 KiB gets the server's own 414
    (HTML: it never reaches a plugin; docs/http-api.md says so)."""
    index = "data/plugin/weightgates/index"

    head = tensorboard_process.request("HEAD", index)
    bad_head = tensorboard_process.request("HEAD", "data/plugin/weightgates/stats?run=x")
    over_plugin = tensorboard_process.request("GET", f"{index}?pad={'x' * routes.MAX_URL_BYTES}")
    over_server = tensorboard_process.request("GET", f"{index}?pad={'x' * 70000}")

    assert head == (200, "application/json", b"")
    assert bad_head == (400, "application/json", b"")
    assert over_plugin[:2] == (414, "application/json")
    assert "error" in json.loads(over_plugin[2])
    assert over_server[0] == 414 and over_server[1].startswith("text/html")


def test_plugin_serves_without_tensorflow(long_logdir):
    """TensorBoard loads plugins in processes without TensorFlow: import the entry point and
    serve the index from a logdir with TensorFlow made unimportable."""
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["tensorflow"] = None
        from tensorboard_plugin_weightgates.backend import loader
        from tensorboard import default, program
        from tensorboard.backend import application
        from tensorboard.backend.event_processing import data_ingester
        from werkzeug import test

        assert loader.WeightGatesLoader in default.get_dynamic_plugins()
        tensorboard = program.TensorBoard(plugins=default.get_plugins())
        tensorboard.configure(["tensorboard", "--logdir", sys.argv[1], "--reload_interval=0"],
                              reload_task="blocking", load_fast="false")
        ingester = data_ingester.LocalDataIngester(tensorboard.flags)
        ingester.start()
        app = application.TensorBoardWSGIApp(
            tensorboard.flags, tensorboard.plugin_loaders, ingester.data_provider)
        index = test.Client(app).get("/data/plugin/weightgates/index").get_json()
        print(json.dumps(sorted(index["runs"])))
        assert sys.modules["tensorflow"] is None
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script, long_logdir],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["run"]
