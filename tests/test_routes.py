"""Tests of the HTTP routes through TensorBoard's own WSGI app, built as `tensorboard` builds
it (flags, plugin loaders, the multiplexer data provider), over a log directory written by the
real writer (`test_reader.models_logdir`)."""

from __future__ import annotations

import json
import struct
from urllib.parse import urlencode

import numpy as np
import pytest
from test_reader import (
    GRU_GATES,
    LSTM_GATES,
    LSTM_KERNEL,
    expected_stats,
    gate_values,
    models_logdir,
    write_raw,
)
from werkzeug import test as werkzeug_test

from tensorboard_plugin_weightgates.backend import reader, routes
from tensorboard_plugin_weightgates.format import metadata, options

pytest.importorskip("tensorflow")

from tensorboard import default, program  # noqa: E402
from tensorboard.backend import application  # noqa: E402
from tensorboard.backend.event_processing import data_ingester  # noqa: E402

PREFIX = "/data/plugin/weightgates"
LSTM = {"run": "run", "layer": "bidirectional", "direction": "forward", "kernel": "kernel"}
GRU_BIAS = {"run": "run", "layer": "gru", "direction": "forward", "kernel": "input_bias"}
DENSE = {"run": "run", "layer": "dense", "direction": "forward", "kernel": "kernel"}
GRU_CELL = {"run": "stacked", "layer": "stacked", "direction": "forward", "kernel": "kernel"}
NAN = {"run": "nan", "layer": "lstm", "direction": "forward", "kernel": "kernel"}
SLICE = metadata.SliceInfo(
    layer="dense",
    layer_type="Dense",
    order=0,
    direction="forward",
    cell=None,
    bidirectional=False,
    kernel="bias",
    gates=(None,),
    kernel_order=1,
    axes=("unit",),
    variable_shape=(1,),
    gate_index=0,
    shape=(1,),
)


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
def models():
    return models_logdir()[1]


@pytest.fixture(scope="module")
def client():
    return werkzeug_test.Client(tensorboard_app(models_logdir()[0]))


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
    assert strict_json(get(client, "index")) == {"version": 2, "runs": {}, "errors": {}}


def test_index(client):
    index = strict_json(get(client, "index"))

    assert (index["version"], index["errors"], sorted(index["runs"])) == (
        2,
        {},
        ["nan", "run", "stacked"],
    )
    layers = index["runs"]["run"]["layers"]
    assert [
        (la["layer"], la["layer_type"], la["order"], la["cell"], la["bidirectional"])
        for la in layers
    ] == [
        ("bidirectional", "LSTM", 0, None, True),
        ("gru", "GRU", 1, None, False),
        ("dense", "Dense", 2, None, False),
    ]
    forward, backward = layers[0]["directions"]
    assert (forward["direction"], backward["direction"]) == ("forward", "backward")
    assert [k["kernel"] for k in forward["kernels"]] == ["kernel", "recurrent_kernel", "bias"]
    assert [k["kernel_order"] for d in (forward, backward) for k in d["kernels"]] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    steps = {"stats_steps": [0, 1, 2], "snapshot_steps": [0, 2]}
    assert forward["kernels"][0] == {
        "kernel": "kernel",
        "kernel_order": 0,
        "shape": [3, 8],
        "axes": ["input", "unit"],
        "variable_shape": [3, 8],
        "gates": list(LSTM_GATES),
        "gate_boundaries": [0, 2, 4, 6, 8],
        "counts_dead_units": True,
        "kinds": {"weights": steps, "gradients": steps},
    }
    assert [(k["axes"], k["counts_dead_units"]) for k in forward["kernels"][1:]] == [
        (["hidden", "unit"], True),
        (["unit"], False),
    ]
    gru = layers[1]["directions"][0]["kernels"]
    assert [k["kernel"] for k in gru] == [
        "kernel",
        "recurrent_kernel",
        "input_bias",
        "recurrent_bias",
    ]
    assert (gru[2]["shape"], gru[2]["gates"], gru[2]["variable_shape"]) == (
        [6],
        list(GRU_GATES),
        [2, 6],
    )
    dense = layers[2]["directions"][0]["kernels"][0]
    assert (dense["gates"], dense["gate_boundaries"]) == ([None], [0, 1])
    stacked = index["runs"]["stacked"]["layers"]
    assert [(la["layer"], la["cell"], la["layer_type"]) for la in stacked] == [
        ("stacked", 0, "LSTMCell"),
        ("stacked", 1, "GRUCell"),
    ]
    cell_kernel = stacked[1]["directions"][0]["kernels"][0]
    assert cell_kernel["kinds"] == {"weights": {"stats_steps": [0, 1], "snapshot_steps": [1]}}


@pytest.mark.parametrize("kind", ["weights", "gradients"])
def test_stats_of_every_gate_are_those_of_the_logged_values(client, models, kind):
    response = strict_json(get(client, "stats", **LSTM, kind=kind))

    assert {k: response[k] for k in ("run", "layer", "cell", "direction", "kernel", "kind")} == {
        **LSTM,
        "cell": None,
        "kind": kind,
    }
    assert (response["bins"], response["fields"]) == (
        options.DEFAULT_BINS,
        list(metadata.STAT_FIELDS),
    )
    assert [g["gate"] for g in response["gates"]] == list(LSTM_GATES)
    for gate_index, gate in enumerate(response["gates"]):
        assert gate["steps"] == [0, 1, 2]
        assert len(gate["wall_times"]) == 3
        assert set(gate["values"]) == set(metadata.STAT_FIELDS)
        for row, step in enumerate(gate["steps"]):
            values = gate_values(models["run"].value(kind, step, LSTM_KERNEL), 4)[gate_index]
            for name, expected in expected_stats(values, None).items():
                if name != "update_size":
                    np.testing.assert_allclose(gate["values"][name][row], expected, rtol=1e-5)
        histograms = gate["histograms"]
        assert histograms["low"] == gate["values"]["hist_low"]
        assert histograms["high"] == gate["values"]["hist_high"]
        assert [sum(c) for c in histograms["counts"]] == [values.size] * 3
        assert all(isinstance(c, int) for row in histograms["counts"] for c in row)
    update_size = response["gates"][0]["values"]["update_size"]
    assert update_size[0] is None  # NaN: no previous step, or a gradient
    assert (update_size[1] is None) == (kind == "gradients")


def test_stats_of_one_gate_of_a_cell(client, models):
    response = strict_json(get(client, "stats", **GRU_CELL, kind="weights", cell=1, gate="reset"))

    assert (response["cell"], [g["gate"] for g in response["gates"]]) == (1, ["reset"])
    key = ("stacked", 1, "forward", "kernel")
    reset = gate_values(models["stacked"].value("weights", 1, key), 3)[1]
    np.testing.assert_allclose(response["gates"][0]["values"]["min"][1], reset.min(), rtol=1e-6)


def test_snapshot_is_the_logged_kernel(client, models):
    response = get(client, "snapshot", **LSTM, kind="weights", step=0)

    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    header, values = decode_snapshot(response.get_data())
    kernel = models["run"].value("weights", 0, LSTM_KERNEL)
    np.testing.assert_array_equal(values, np.stack([kernel, kernel]))
    assert header == {
        **LSTM,
        "cell": None,
        "kind": "weights",
        "step": 0,
        "steps": [0, 2],
        "shape": [3, 8],
        "axes": ["input", "unit"],
        "variable_shape": [3, 8],
        "rows": 3,
        "cols": 8,
        "block": [1, 1],
        "planes": ["mean", "max_abs"],
        "gates": list(LSTM_GATES),
        "gate_boundaries": [0, 2, 4, 6, 8],
        "nan_count": 0,
        "inf_count": 0,
    }


def test_snapshot_defaults_to_the_latest_step(client, models):
    header, values = decode_snapshot(get(client, "snapshot", **GRU_BIAS, kind="gradients").data)

    assert (header["step"], header["rows"], header["cols"]) == (2, 1, 6)
    bias = models["run"].value("gradients", 2, ("gru", None, "forward", "input_bias"))
    np.testing.assert_array_equal(values, np.stack([bias[None], bias[None]]))


def test_nan_and_inf_survive(client, models):
    header, values = decode_snapshot(get(client, "snapshot", **NAN, kind="weights").data)
    stats = strict_json(get(client, "stats", **NAN, kind="weights"))

    kernel = models["nan"].value("weights", 0, ("lstm", None, "forward", "kernel"))
    np.testing.assert_array_equal(values, np.stack([kernel, kernel]))
    assert np.isnan(values[:, 0, 0]).all() and np.isinf(values[:, 1, 3]).all()
    assert (header["nan_count"], header["inf_count"]) == (1, 1)
    assert [g["values"]["nan_count"] for g in stats["gates"]] == [[1], [0], [0], [0]]
    assert [g["values"]["inf_count"] for g in stats["gates"]] == [[0], [1], [0], [0]]
    assert stats["gates"][0]["values"]["update_size"] == [None]
    assert stats["gates"][0]["values"]["mean"][0] == pytest.approx(
        np.nanmean(kernel[:, :2]), rel=1e-6
    )


@pytest.mark.parametrize(
    "route, params, status, message",
    [
        ("stats", {**LSTM}, 400, "missing parameter 'kind'"),
        ("stats", {**LSTM, "kind": "weights", "run": None}, 400, "missing parameter 'run'"),
        ("stats", {**LSTM, "kind": "weights", "layer": None}, 400, "'layer'"),
        ("stats", {**LSTM, "kind": "weights", "direction": None}, 400, "'direction'"),
        ("stats", {**LSTM, "kind": "weights", "kernel": None}, 400, "'kernel'"),
        ("stats", {**LSTM, "kind": "weights", "cell": "one"}, 400, "'cell' must be an integer"),
        ("stats", {**LSTM, "kind": "weights", "cell": "1.0"}, 400, "'cell' must be an integer"),
        ("stats", {**LSTM, "kind": "weights", "cell": "1_0"}, 400, "'cell' must be an integer"),
        ("stats", {**LSTM, "kind": "weights", "cell": " 1"}, 400, "'cell' must be an integer"),
        ("stats", {**LSTM, "kind": "weights", "cell": "\u0661"}, 400, "'cell' must be an int"),
        ("stats", {**LSTM, "kind": "weights", "cell": "9" * 5000}, 400, "'cell' must be an int"),
        ("stats", {**LSTM, "kind": "weights", "run": "nope"}, 404, "run 'nope'"),
        ("stats", {**LSTM, "kind": "weights", "layer": "nope"}, 404, "layer 'nope'"),
        ("stats", {**LSTM, "kind": "weights", "kernel": "nope"}, 404, "of kernel 'nope'"),
        ("stats", {**LSTM, "kind": "weights", "direction": "up"}, 404, "direction 'up'"),
        ("stats", {**LSTM, "kind": "weights", "cell": 0}, 404, "cell 0"),
        ("stats", {**GRU_CELL, "kind": "weights", "cell": 2}, 404, "cell 2"),
        ("stats", {**LSTM, "kind": "biases"}, 404, "unknown kind 'biases'"),
        ("stats", {**GRU_CELL, "kind": "gradients", "cell": 0}, 404, "no statistics of grad"),
        ("stats", {**GRU_BIAS, "kind": "weights", "gate": "forget"}, 404, "no gate 'forget'"),
        ("stats", {**DENSE, "kind": "weights", "gate": "input"}, 404, "not a gated kernel"),
        ("snapshot", {**LSTM, "run": None, "kind": "weights"}, 400, "missing parameter 'run'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": "x"}, 400, "'step' must be an integer"),
        ("snapshot", {**LSTM, "kind": "weights", "step": "1.5"}, 400, "'step'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": ""}, 400, "'step'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": 2**63}, 400, "'step'"),
        ("snapshot", {**LSTM, "kind": "weights", "step": -(2**63)}, 404, "step -9223372036854"),
        ("snapshot", {**LSTM, "kind": "weights", "step": 1}, 404, "no snapshot at step 1"),
        ("snapshot", {**LSTM, "kind": "gradients", "step": -1}, 404, "step -1"),
        ("snapshot", {**LSTM, "kind": "weights", "run": "nope"}, 404, "run 'nope'"),
        ("snapshot", {**GRU_BIAS, "kind": "weights", "direction": "backward"}, 404, "of kernel"),
        ("snapshot", {**GRU_CELL, "kind": "gradients", "cell": 1}, 404, "no snapshots of grad"),
        ("snapshot", {**LSTM, "kind": "activations"}, 404, "unknown kind"),
    ],
)
def test_bad_requests_are_json_errors(client, route, params, status, message):
    response = get(client, route, **{k: v for k, v in params.items() if v is not None})

    assert response.status_code == status
    assert message in strict_json(response)["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("route", ["index", "stats", "static/index.js", "nope"])
def test_other_methods_than_get_and_head_are_refused(client, method, route):
    response = client.open(f"{PREFIX}/{route}", method=method)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert f"method {method} is not allowed" in strict_json(response)["error"]


@pytest.mark.parametrize(
    "path",
    [
        "index",
        "stats?" + urlencode({**LSTM, "kind": "weights"}),
        "stats?" + urlencode(LSTM),
        "snapshot?" + urlencode({**LSTM, "kind": "weights"}),
        "snapshot?" + urlencode({**LSTM, "kind": "weights", "step": 1}),
        "static/index.js",
        "static/missing.js",
        "nope",
    ],
)
def test_head_is_get_without_the_body(client, path):
    got = client.get(f"{PREFIX}/{path}")
    head = client.head(f"{PREFIX}/{path}")

    assert head.status_code == got.status_code
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.headers["Content-Length"] == str(len(got.get_data()))
    assert head.get_data() == b""


def test_overlong_url_is_a_json_414(client):
    fits = get(client, "stats", **LSTM, kind="weights", pad="x" * (routes.MAX_URL_BYTES - 200))
    too_long = get(client, "stats", **LSTM, kind="weights", pad="x" * routes.MAX_URL_BYTES)

    assert fits.status_code == 200
    assert too_long.status_code == 414
    assert f"more than the {routes.MAX_URL_BYTES} allowed" in strict_json(too_long)["error"]


def test_repeated_parameter_is_a_bad_request(client):
    response = client.get(f"{PREFIX}/stats?{urlencode(LSTM)}&kind=weights&kind=gradients")

    assert response.status_code == 400
    assert "parameter 'kind' is given more than once" in strict_json(response)["error"]


@pytest.mark.parametrize("path", ["nope", "index/extra", "stats/x", "static", "static/"])
def test_path_that_is_no_route_is_a_json_404(client, path):
    response = client.get(f"{PREFIX}/{path}")

    assert response.status_code == 404
    assert "no route" in strict_json(response)["error"]


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
    monkeypatch.setattr(routes, "STATIC_DIR", str(root))
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


def test_unreadable_data_is_reported_not_served(tmp_path):
    """A run whose only tag has an unsupported format version, and one whose only vector has
    the wrong length, are reported in the index; the vector's stats are a 404 naming it."""
    future = b'{"version": 3, "record": "stats", "kind": "weights"}'
    write_raw(
        str(tmp_path / "future"), metadata.stats_tag(SLICE, "weights"), np.zeros(3), 0, future
    )
    content = metadata.create_stats_metadata(SLICE, "weights", 5, 0.0).plugin_data.content
    write_raw(
        str(tmp_path / "short"), metadata.stats_tag(SLICE, "weights"), np.zeros(3), 7, content
    )
    client = werkzeug_test.Client(tensorboard_app(str(tmp_path)))

    index = strict_json(get(client, "index"))
    short = {"run": "short", "layer": "dense", "direction": "forward", "kernel": "bias"}
    response = get(client, "stats", **short, kind="weights")

    assert index["runs"] == {}
    assert "format version 3 is not supported" in index["errors"]["future"]
    assert "skipped step 7 of tag" in index["errors"]["short"]
    assert response.status_code == 404
    assert "cannot read this data" in strict_json(response)["error"]
    assert "step 7" in strict_json(response)["error"]


def test_attention_kernels_are_listed_and_drawn_per_head(tmp_path):
    """An attention layer's kernels in storage order, each split per head, with axes that say
    what a row and a column are; the output kernel's snapshot has a row per output unit and
    the heads side by side, as the index says."""
    tf = pytest.importorskip("tensorflow")
    from tensorboard_plugin_weightgates.keras_writer import custom_loop

    inputs = tf.keras.Input((4, 3))
    layer = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="attention")
    model = tf.keras.Model(inputs, layer(inputs, inputs))
    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    custom_loop.log_weights(model, 0, writer)
    writer.close()
    client = werkzeug_test.Client(tensorboard_app(str(tmp_path)))

    (entry,) = strict_json(get(client, "index"))["runs"]["run"]["layers"]
    assert (entry["layer_type"], entry["bidirectional"]) == ("MultiHeadAttention", False)
    kernels = entry["directions"][0]["kernels"]
    listed = [(k["kernel"], k["kernel_order"], k["gates"], k["axes"]) for k in kernels]
    heads = ["head_0", "head_1"]
    assert listed == [
        ("query/kernel", 0, heads, ["input", "head_dim"]),
        ("query/bias", 1, heads, ["head_dim"]),
        ("key/kernel", 2, heads, ["input", "head_dim"]),
        ("key/bias", 3, heads, ["head_dim"]),
        ("value/kernel", 4, heads, ["input", "head_dim"]),
        ("value/bias", 5, heads, ["head_dim"]),
        ("attention_output/kernel", 6, heads, ["output", "head_dim"]),
        ("attention_output/bias", 7, [None], ["output"]),
    ]
    output = kernels[6]
    assert (output["shape"], output["variable_shape"], output["gate_boundaries"]) == (
        [3, 6],
        [2, 3, 3],
        [0, 3, 6],
    )
    response = get(
        client,
        "snapshot",
        run="run",
        layer="attention",
        direction="forward",
        kernel="attention_output/kernel",
        kind="weights",
    )
    header, values = decode_snapshot(response.get_data())
    kernel = np.asarray(layer.weights[6])
    np.testing.assert_array_equal(values[0], np.concatenate([kernel[0].T, kernel[1].T], axis=1))
    assert (header["axes"], header["gates"]) == (["output", "head_dim"], heads)
    stats = strict_json(
        get(
            client,
            "stats",
            run="run",
            layer="attention",
            direction="forward",
            kernel="query/bias",
            kind="weights",
        )
    )
    assert [g["values"]["dead_units"] for g in stats["gates"]] == [[None], [None]]
