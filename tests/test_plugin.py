"""Tests of the HTTP routes through TensorBoard's own WSGI app, built as `tensorboard` builds
it (flags, plugin loaders, the multiplexer data provider) over a real log directory."""

from __future__ import annotations

import json
import os
import struct
from urllib.parse import urlencode

import numpy as np
import pytest
from test_reader import (
    BINS,
    GRU_GATES,
    LSTM_GATES,
    NAN_GATE,
    kernel_infos,
    model_kernels,
    snapshot_planes,
    stats_vector,
    write_run,
)
from werkzeug import test as werkzeug_test

from tensorboard_plugin_weightgates import metadata, plugin, reader

pytest.importorskip("tensorflow")

from tensorboard import default, program  # noqa: E402
from tensorboard.backend import application  # noqa: E402
from tensorboard.backend.event_processing import data_ingester  # noqa: E402

PREFIX = "/data/plugin/weightgates"
LSTM = {"run": "run_a", "layer": "bidirectional", "direction": "forward", "kernel": "kernel"}
GRU = {"run": "run_a", "layer": "gru", "direction": "forward", "kernel": "recurrent_kernel"}
SIMPLE = {"run": "run_a", "layer": "simple_rnn", "direction": "forward", "kernel": "kernel"}
STACKED_1 = {"run": "run_a", "layer": "stacked", "direction": "forward", "kernel": "kernel"}


def tensorboard_app(logdir: str):
    """TensorBoard's WSGI app over `logdir` with every installed plugin (weightgates through
    its entry point), reading with the multiplexer as `tensorboard --load_fast=false` does."""
    tensorboard = program.TensorBoard(plugins=default.get_plugins())
    tensorboard.configure(
        ["tensorboard", "--logdir", logdir, "--load_fast=false", "--reload_interval=0"],
        reload_task="blocking",
    )
    ingester = data_ingester.LocalDataIngester(tensorboard.flags)
    ingester.start()
    return application.TensorBoardWSGIApp(
        tensorboard.flags,
        tensorboard.plugin_loaders,
        ingester.data_provider,
        tensorboard.assets_zip_provider,
        ingester.deprecated_multiplexer,
    )


def get(client, route: str, **params):
    query = f"?{urlencode(params)}" if params else ""
    return client.get(f"{PREFIX}/{route}{query}")


def strict_json(response):
    """The response's JSON, refusing NaN and Infinity (not JSON, and not what the API says)."""
    assert response.mimetype == "application/json"

    def refuse(constant):
        raise AssertionError(f"non-JSON constant {constant} in response")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def decode_snapshot(body: bytes) -> tuple[dict, np.ndarray]:
    """Decodes the snapshot layout of docs/http-api.md, checking padding and length."""
    (length,) = struct.unpack_from("<I", body, 0)
    header = json.loads(body[4 : 4 + length].decode("utf-8"))
    offset = 4 + length + (-(4 + length) % 4)
    assert body[4 + length : offset] == b"\0" * (offset - 4 - length)
    shape = (len(header["planes"]), header["rows"], header["cols"])
    assert len(body) == offset + 4 * int(np.prod(shape))
    values = np.frombuffer(body, dtype="<f4", offset=offset).reshape(shape)
    return header, values


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("logs"))
    write_run(os.path.join(logdir, "run_a"), model_kernels())
    return werkzeug_test.Client(tensorboard_app(logdir))


def test_plugin_is_listed_as_active_with_its_tab(client):
    listing = strict_json(client.get("/data/plugins_listing"))["weightgates"]

    assert listing["enabled"] is True
    assert listing["tab_name"] == "Weight Gates"
    assert listing["disable_reload"] is False
    assert listing["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": f"{PREFIX}/static/index.js",
    }


def test_plugin_is_inactive_without_data(tmp_path):
    client = werkzeug_test.Client(tensorboard_app(str(tmp_path)))

    assert strict_json(client.get("/data/plugins_listing"))["weightgates"]["enabled"] is False
    assert strict_json(get(client, "index")) == {"version": 1, "runs": {}, "errors": {}}


def test_index(client):
    index = strict_json(get(client, "index"))

    assert (index["version"], index["errors"]) == (1, {})
    layers = index["runs"]["run_a"]["layers"]
    assert [(la["layer"], la["cell"], la["order"]) for la in layers] == [
        ("bidirectional", None, 0),
        ("gru", None, 1),
        ("simple_rnn", None, 2),
        ("stacked", 0, 3),
        ("stacked", 1, 3),
    ]
    bidirectional = layers[0]
    assert bidirectional["layer_type"] == "LSTM"
    assert [d["direction"] for d in bidirectional["directions"]] == ["forward", "backward"]
    kernel, bias = bidirectional["directions"][0]["kernels"]
    steps = {"stats_steps": [0, 10, 20], "snapshot_steps": [0, 20]}
    assert kernel == {
        "kernel": "kernel",
        "shape": [3, 8],
        "gates": list(LSTM_GATES),
        "gate_boundaries": [0, 2, 4, 6, 8],
        "kinds": {"weights": steps, "gradients": steps},
    }
    assert (bias["kernel"], bias["shape"]) == ("bias", [8])
    gru = layers[1]["directions"][0]["kernels"][0]
    assert gru["gates"] == list(GRU_GATES)
    assert gru["kinds"] == {"weights": {"stats_steps": [0, 10, 20], "snapshot_steps": []}}
    simple = layers[2]["directions"][0]["kernels"][0]
    assert (simple["gates"], simple["gate_boundaries"]) == ([None], [0, 4])


def test_stats_of_every_gate_are_the_values_written(client):
    response = strict_json(get(client, "stats", **LSTM, kind="gradients"))

    assert {k: response[k] for k in ("run", "layer", "cell", "direction", "kernel", "kind")} == {
        **LSTM,
        "cell": None,
        "kind": "gradients",
    }
    assert (response["bins"], response["fields"]) == (BINS, list(metadata.STAT_FIELDS))
    assert [g["gate"] for g in response["gates"]] == list(LSTM_GATES)
    for gate, info in zip(response["gates"], kernel_infos("bidirectional")):
        assert gate["steps"] == [0, 10, 20]
        assert len(gate["wall_times"]) == 3
        written = [stats_vector(info, "gradients", step) for step in (0, 10, 20)]
        for i, field in enumerate(metadata.STAT_FIELDS):
            expected = [None if np.isnan(v[i]) else v[i] for v in written]
            assert gate["values"][field] == expected, field
        histograms = gate["histograms"]
        assert histograms["low"] == gate["values"]["hist_low"]
        assert histograms["high"] == gate["values"]["hist_high"]
        assert histograms["counts"] == [v[len(metadata.STAT_FIELDS) :].tolist() for v in written]
        assert all(isinstance(c, int) for row in histograms["counts"] for c in row)
    assert response["gates"][NAN_GATE]["values"]["std"][0] is None
    assert response["gates"][0]["values"]["update_size"] == [None, None, None]


def test_stats_of_one_gate_and_of_a_cell(client):
    reset = strict_json(get(client, "stats", **GRU, kind="weights", gate="reset"))
    cell = strict_json(get(client, "stats", **STACKED_1, kind="weights", cell=1))

    assert [g["gate"] for g in reset["gates"]] == ["reset"]
    assert cell["cell"] == 1
    written = stats_vector(kernel_infos("stacked", cell=1)[2], "weights", 20)
    assert cell["gates"][2]["values"]["mean"][2] == written[metadata.STAT_FIELDS.index("mean")]


def test_snapshot_is_the_kernel_written(client):
    response = get(client, "snapshot", **LSTM, kind="weights", step=0)

    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    header, values = decode_snapshot(response.get_data())
    written = np.concatenate(
        [snapshot_planes(info, "weights", 0) for info in kernel_infos("bidirectional")], axis=2
    )
    np.testing.assert_array_equal(values, written)  # NaN and Inf survive
    assert header == {
        **LSTM,
        "cell": None,
        "kind": "weights",
        "step": 0,
        "steps": [0, 20],
        "shape": [3, 8],
        "rows": 3,
        "cols": 8,
        "block": [1, 1],
        "planes": ["mean", "max_abs"],
        "gates": list(LSTM_GATES),
        "gate_boundaries": [0, 2, 4, 6, 8],
        "nan_count": 1,
        "inf_count": 1,
    }


def test_snapshot_defaults_to_the_latest_step(client):
    header, values = decode_snapshot(get(client, "snapshot", **SIMPLE, kind="gradients").data)

    assert (header["step"], header["gates"], header["gate_boundaries"]) == (20, [None], [0, 4])
    info = kernel_infos("simple_rnn", "SimpleRNN", 2, "kernel", (None,), (3, 4))[0]
    np.testing.assert_array_equal(values, snapshot_planes(info, "gradients", 20))


@pytest.mark.parametrize(
    "route, params, status, message",
    [
        ("stats", {**LSTM}, 400, "missing parameter 'kind'"),
        ("stats", {**LSTM, "kind": "weights", "run": None}, 400, "missing parameter 'run'"),
        ("stats", {**LSTM, "kind": "weights", "layer": None}, 400, "'layer'"),
        ("stats", {**LSTM, "kind": "weights", "direction": None}, 400, "'direction'"),
        ("stats", {**LSTM, "kind": "weights", "kernel": None}, 400, "'kernel'"),
        ("stats", {**LSTM, "kind": "weights", "cell": "one"}, 400, "'cell' must be an integer"),
        ("stats", {**LSTM, "kind": "weights", "run": "nope"}, 404, "run 'nope'"),
        ("stats", {**LSTM, "kind": "weights", "layer": "nope"}, 404, "layer 'nope'"),
        (
            "stats",
            {**LSTM, "kind": "weights", "kernel": "nope"},
            404,
            "no statistics of kernel 'nope'",
        ),
        ("stats", {**LSTM, "kind": "weights", "direction": "up"}, 404, "direction 'up'"),
        ("stats", {**LSTM, "kind": "weights", "cell": 0}, 404, "cell 0"),
        ("stats", {**LSTM, "kind": "biases"}, 404, "unknown kind 'biases'"),
        ("stats", {**GRU, "kind": "gradients"}, 404, "no statistics of gradients"),
        ("stats", {**GRU, "kind": "weights", "gate": "forget"}, 404, "no gate 'forget'"),
        ("stats", {**SIMPLE, "kind": "weights", "gate": "input"}, 404, "not a gated kernel"),
        ("snapshot", {**LSTM, "run": None, "kind": "weights"}, 400, "missing parameter 'run'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": "x"}, 400, "'step' must be an integer"),
        ("snapshot", {**LSTM, "kind": "weights", "step": "1.5"}, 400, "'step'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": ""}, 400, "'step'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": 10}, 404, "no snapshot at step 10"),
        ("snapshot", {**LSTM, "kind": "weights", "run": "nope"}, 404, "run 'nope'"),
        ("snapshot", {**LSTM, "kind": "weights", "layer": "gru"}, 404, "no snapshots of kernel"),
        ("snapshot", {**GRU, "kind": "weights"}, 404, "no snapshots of kernel"),
        ("snapshot", {**SIMPLE, "kind": "weights", "step": 10}, 404, "no snapshot at step 10"),
        ("snapshot", {**LSTM, "kind": "gradients", "step": -1}, 404, "step -1"),
        ("snapshot", {**LSTM, "kind": "activations"}, 404, "unknown kind"),
    ],
)
def test_bad_requests_are_json_errors(client, route, params, status, message):
    response = get(client, route, **{k: v for k, v in params.items() if v is not None})

    assert response.status_code == status
    assert message in strict_json(response)["error"]


def test_unexpected_failure_is_a_json_500_without_traceback(client, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(reader, "read_index", fail)

    response = get(client, "index")

    assert response.status_code == 500
    error = strict_json(response)["error"]
    assert "secret detail" not in error and "Traceback" not in error


STATIC_FILES = {
    "index.js": ("export const x = 1;\n", "text/javascript"),
    "views/heatmap.js": ("export {};\n", "text/javascript"),
    "style.css": ("body {}\n", "text/css"),
    "page.html": ("<p>hi</p>\n", "text/html"),
    "icon.svg": ("<svg/>\n", "image/svg+xml"),
    "icon.png": ("\x89PNG\r\n", "image/png"),
    "data.json": ("{}\n", "application/json"),
}


@pytest.fixture
def static_dir(tmp_path, monkeypatch):
    """A temporary static folder in place of the package's, with a file and a symlinked
    file outside it."""
    root = tmp_path / "static"
    for name, (text, _) in STATIC_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("latin-1"))
    (root / "notes.txt").write_text("not a served type")
    (tmp_path / "outside.js").write_text("secret")
    (root / "link.js").symlink_to(tmp_path / "outside.js")
    monkeypatch.setattr(plugin, "STATIC_DIR", str(root))
    return root


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
def test_static_files_with_their_content_types(client, static_dir, name):
    response = client.get(f"{PREFIX}/static/{name}")

    assert response.status_code == 200
    assert response.mimetype == STATIC_FILES[name][1]
    assert response.get_data() == (static_dir / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "static/../plugin.py",
        "static/%2e%2e/plugin.py",
        "static/..%2fplugin.py",
        "static/%2e%2e%2f%2e%2e%2fsetup.py",
        "static/..%5c..%5cplugin.py",
        "static/%252e%252e/plugin.py",
        "static/views/../../plugin.py",
        "static//etc/passwd",
        "static/%2fetc%2fpasswd",
        "static/./index.js",
        "static/link.js",
        "static/missing.js",
        "static/notes.txt",
        "static/views",
    ],
)
def test_static_refuses_paths_outside_and_unknown_files(client, static_dir, path):
    response = client.get(f"{PREFIX}/{path}")

    assert response.status_code == 404
    assert "error" in strict_json(response)
