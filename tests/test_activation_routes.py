"""The activation routes through TensorBoard's own WSGI app (as `test_routes`), over the
activation logdir written by the real writer (`test_activation_logging.activation_logdir`), and
the activation format's strictness on damaged records written one by one."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from test_activation_logging import CTX, activation_logdir
from test_reader import multiplexer_provider
from test_routes import get, strict_json, tensorboard_app
from werkzeug import test as werkzeug_test

from tensorboard_plugin_weightgates.backend import reader
from tensorboard_plugin_weightgates.format import metadata

tf = pytest.importorskip("tensorflow")

BI = {"run": "probe", "layer": "bi", "direction": "forward"}
BACKWARD = {**BI, "direction": "backward"}
STACK_1 = {"run": "stacked", "layer": "stack", "direction": "forward", "cell": 1}
INFO = metadata.ActivationInfo(
    layer="lstm",
    layer_type="LSTM",
    order=0,
    direction="forward",
    cell=None,
    bidirectional=False,
    names=("input", "forget", "cell", "output", "cell_state", "hidden_state"),
    saturations=("sigmoid", "sigmoid", "tanh", "sigmoid", None, "tanh"),
    units=2,
    spatial=(),
    timesteps=4,
)


@pytest.fixture(scope="module")
def client():
    return werkzeug_test.Client(tensorboard_app(activation_logdir()[0]))


@pytest.fixture(scope="module")
def provider():
    return multiplexer_provider(activation_logdir()[0])


def decode_maps(body: bytes) -> tuple[dict, np.ndarray]:
    (length,) = struct.unpack_from("<I", body, 0)
    header = json.loads(body[4 : 4 + length].decode("utf-8"))
    offset = 4 + length + (-(4 + length) % 4)
    shape = (len(header["names"]), len(header["planes"]), header["rows"], header["cols"])
    assert len(body) == offset + 4 * int(np.prod(shape))
    return header, np.frombuffer(body, dtype="<f4", offset=offset).reshape(shape)


def test_a_logdir_of_activations_only_shows_the_tab(client):
    listing = strict_json(client.get("/data/plugins_listing"))["weightgates"]

    assert listing["enabled"] is True


def test_the_index_lists_each_direction_and_cell_with_its_steps(client):
    body = strict_json(get(client, "activations"))

    assert body["errors"] == {}
    probe = body["runs"]["probe"]["layers"]
    assert [(layer["layer"], layer["layer_type"], layer["order"]) for layer in probe] == [
        ("bi", "LSTM", 0),
        ("gru", "GRU", 1),
    ]
    forward, backward = probe[0]["directions"]
    assert (forward["direction"], backward["direction"]) == ("forward", "backward")
    assert forward["names"] == ["input", "forget", "cell", "output", "cell_state", "hidden_state"]
    assert forward["saturations"]["forget"] == "sigmoid"
    assert forward["saturations"]["cell_state"] is None
    assert (forward["units"], forward["spatial"], forward["timesteps"]) == (3, [], 6)
    assert forward["map_names"] == [*forward["names"], "hidden_state_gradient"]
    assert forward["stats_steps"] == forward["gradient_steps"] == [0, 1, 2]
    assert forward["map_steps"] == [0, 2]
    stacked = body["runs"]["stacked"]["layers"]
    assert [(layer["cell"], layer["layer_type"]) for layer in stacked] == [
        (0, "LSTMCell"),
        (1, "SimpleRNNCell"),
    ]
    assert stacked[1]["directions"][0]["gradient_steps"] == []


def test_stats_give_every_field_per_step_and_the_units_at_the_latest_step(client, provider):
    body = strict_json(get(client, "activation_stats", **BI))

    group = reader.list_activations(provider, CTX, "").group("probe", ("bi", None, "forward"))
    expected = reader.read_activation_stats(provider, CTX, "", group, unit_step=2)
    assert body["fields"] == [*metadata.ACTIVATION_STAT_FIELDS, *reader.SATURATED_UNIT_FIELDS]
    assert body["unit_fields"] == ["left_saturated", "right_saturated", "mean"]
    assert (body["units"], body["kind"], body["saturated_unit_fraction"]) == (3, "activations", 0.9)
    assert [n["name"] for n in body["names"]] == list(group.info.names)
    for entry, stats in zip(body["names"], expected.names):
        assert entry["steps"] == [0, 1, 2]
        assert entry["units"]["steps"] == [2]
        for i, field in enumerate(metadata.ACTIVATION_UNIT_FIELDS):
            values = entry["units"][field][0]
            if stats.thresholds is None and field != "mean":
                assert values == [None] * 3
            else:
                np.testing.assert_allclose(values, stats.units[0, i])
        mean = metadata.ACTIVATION_STAT_FIELDS.index("mean")
        np.testing.assert_allclose(entry["values"]["mean"], stats.scalars[:, mean])
        assert len(entry["histograms"]["counts"]) == 3
    forget = body["names"][1]
    assert forget["saturation"] == {"type": "sigmoid", "low": 0.1, "high": 0.9}
    assert body["names"][4]["saturation"] is None  # the cell state
    assert body["names"][4]["values"]["left_saturated_units"] == [None] * 3


def test_stats_of_one_name_at_one_step_or_all_steps(client):
    one = strict_json(get(client, "activation_stats", **BI, name="forget", step=0))
    every = strict_json(get(client, "activation_stats", **BI, name="forget", step="all"))

    assert [n["name"] for n in one["names"]] == ["forget"]
    assert one["names"][0]["units"]["steps"] == [0]
    assert every["names"][0]["units"]["steps"] == [0, 1, 2]
    assert every["names"][0]["units"]["mean"][0] == one["names"][0]["units"]["mean"][0]
    counts = every["names"][0]["values"]["right_saturated_units"]
    right = np.array(every["names"][0]["units"]["right_saturated"])
    assert counts == (right > metadata.SATURATED_UNIT_FRACTION).sum(axis=1).tolist()


def test_gradient_norms_per_logged_step(client, provider):
    body = strict_json(get(client, "activation_gradients", **BACKWARD))

    group = reader.list_activations(provider, CTX, "").group("probe", ("bi", None, "backward"))
    norms = reader.read_gradient_norms(provider, CTX, "", group)
    assert (body["timesteps"], body["steps"]) == (6, [0, 1, 2])
    np.testing.assert_allclose(body["norms"], norms.norms)
    assert len(body["wall_times"]) == 3


def test_maps_of_every_name_at_a_step(client, provider):
    response = get(client, "activation_maps", **BI, step=0)

    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    header, values = decode_maps(response.get_data())
    group = reader.list_activations(provider, CTX, "").group("probe", ("bi", None, "forward"))
    expected = reader.read_activation_maps(provider, CTX, "", group, step=0)
    assert (header["step"], header["steps"], header["sample"]) == (0, [0, 2], 1)
    assert header["names"] == list(expected.names)
    assert (header["shape"], header["rows"], header["cols"], header["block"]) == (
        [3, 6],
        3,
        6,
        [1, 1],
    )
    assert header["planes"] == ["mean", "max_abs"]
    assert header["valid"] == expected.valid.tolist()
    masked = int((np.array(header["valid"]) == 0).sum())
    assert header["nan_count"]["forget"] == 3 * masked
    np.testing.assert_array_equal(values, expected.values)


def test_maps_of_one_name_default_to_the_latest_step(client):
    header, values = decode_maps(
        get(client, "activation_maps", **STACK_1, name="hidden_state").data
    )

    assert (header["step"], header["names"], header["cell"]) == (5, ["hidden_state"], 1)
    assert values.shape == (1, 2, 3, 6)


@pytest.mark.parametrize(
    "route, params, status, message",
    [
        ("activation_stats", {"run": "probe", "layer": "bi"}, 400, "missing parameter 'direction'"),
        ("activation_stats", {**BI, "step": "later"}, 400, "'step' must be an integer"),
        ("activation_stats", {**BI, "cell": "x"}, 400, "'cell' must be an integer"),
        ("activation_stats", {**BI, "run": "nope"}, 404, "no weightgates activations"),
        (
            "activation_stats",
            {**BI, "layer": "gru", "direction": "backward"},
            404,
            "no activations of",
        ),
        ("activation_stats", {**BI, "name": "update"}, 404, "no statistics of 'update'"),
        ("activation_stats", {**BI, "step": 7}, 404, "no statistics at step 7"),
        ("activation_gradients", STACK_1, 404, "no gradients through time"),
        ("activation_maps", {**BI, "step": 1}, 404, "have no step 1"),
        ("activation_maps", {**BI, "name": "update"}, 404, "no maps of 'update'"),
    ],
)
def test_bad_queries_get_json_errors(client, route, params, status, message):
    response = get(client, route, **params)

    assert response.status_code == status
    assert message in strict_json(response)["error"]


def _write(run_dir: str, tag: str, values, content: dict | bytes, plugin: str) -> None:
    metadata_proto = metadata.create_gradient_norms_metadata(INFO)
    metadata_proto.plugin_data.plugin_name = plugin
    metadata_proto.plugin_data.content = (
        content if isinstance(content, bytes) else json.dumps(content).encode()
    )
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.write(tag, values, step=0, metadata=metadata_proto)
    writer.close()


def _content(record: str, **changes) -> dict:
    content = {"version": 1, "record": record, "layer": INFO.to_json()}
    content.update(changes)
    return content


def test_damaged_records_are_skipped_and_reported_per_run(tmp_path):
    good = str(tmp_path / "good")
    norms_tag = metadata.gradient_norms_tag(INFO)
    _write(
        good, norms_tag, np.ones(4), _content("gradient_norms"), metadata.ACTIVATIONS_PLUGIN_NAME
    )
    bad = str(tmp_path / "bad")
    plugin = metadata.ACTIVATIONS_PLUGIN_NAME
    _write(bad, norms_tag, np.ones(4), _content("gradient_norms", version=9), plugin)
    _write(bad, "weightgates/activation_gradients/x/forward", np.ones(4), b"\xff", plugin)
    _write(
        bad,
        "weightgates/activation_gradients/y/forward",
        np.ones(4),
        _content("gradient_norms"),
        plugin,
    )
    wrong_shape = str(tmp_path / "wrong_shape")
    _write(wrong_shape, norms_tag, np.ones(5), _content("gradient_norms"), plugin)
    provider = multiplexer_provider(str(tmp_path))

    index = reader.read_activation_index(provider, CTX, "")

    assert sorted(index.runs) == ["good", "wrong_shape"]
    assert "version 9 is not supported" in index.errors["bad"]
    assert "not weightgates JSON" in index.errors["bad"]
    assert "does not match the layer" in index.errors["bad"]
    group = reader.list_activations(provider, CTX, "").group("wrong_shape", INFO.key)
    with pytest.raises(metadata.FormatError, match=r"shape \(5,\), expected \(4,\)"):
        reader.read_gradient_norms(provider, CTX, "", group)
    client = werkzeug_test.Client(tensorboard_app(str(tmp_path)))
    response = get(
        client, "activation_gradients", run="wrong_shape", layer="lstm", direction="forward"
    )
    assert response.status_code == 404 and "cannot read" in strict_json(response)["error"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"units": 0}, "units"),
        ({"units": True}, "units"),
        ({"direction": "sideways"}, "direction must be one of .* got 'sideways'"),
        ({"names": ["input", "input", "hidden_state"]}, "repeated"),
        ({"names": ["input"], "saturations": ["sigmoid"]}, "must hold 'hidden_state'"),
        ({"saturations": ["sigmoid"]}, "saturation types for"),
        ({"saturations": ["sigmoid"] * 5 + ["relu"]}, "saturations must be one of .* got 'relu'"),
        ({"bidirectional": 1}, "bidirectional must be true or false"),
        ({"cell": -1}, "cell must be an integer"),
        ({"timesteps": 2**40}, "timesteps"),
        ({"layer": ""}, "non-empty string"),
    ],
)
def test_layer_descriptions_are_validated(change, message):
    obj = {**INFO.to_json(), **change}

    with pytest.raises(metadata.FormatError, match=message):
        metadata.ActivationInfo.from_json(obj)


@pytest.mark.parametrize(
    "content, message",
    [
        (_content("activation_stats", name="forget", bins=3), "no 'saturation'"),
        (
            _content("activation_stats", name="forget", bins=3, saturation=[0.1, 0.9]),
            "saturation must be an object",
        ),
        (
            _content(
                "activation_stats",
                name="forget",
                bins=3,
                saturation={"type": "sigmoid", "low": float("nan"), "high": 0.9},
            ),
            "saturation low must be a finite number",
        ),
        (
            _content("activation_stats", name="nope", bins=3, saturation=None),
            "name must be one of",
        ),
        (
            _content("activation_stats", name="forget", bins=3, saturation=None),
            "no saturation for 'forget'",
        ),
        (
            _content(
                "activation_stats",
                name="forget",
                bins=0,
                saturation={"type": "sigmoid", "low": 0.1, "high": 0.9},
            ),
            "from 1 to",
        ),
        (_content("activation_map", name="forget", sample=0, max_cells=4, block=[1]), "block"),
        (
            _content("activation_map", name="forget", sample=0, max_cells=4, block=[9, 1]),
            r"block \[9, 1\] is larger than the 2 x 4 map",
        ),
        (_content("mystery"), "unknown activation record"),
    ],
)
def test_contents_are_validated(content, message):
    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_activation_content(json.dumps(content).encode())


def test_contents_round_trip_and_tensors_are_checked_before_use():
    stats = metadata.parse_activation_content(
        metadata.create_activation_stats_metadata(INFO, "forget", 5).plugin_data.content
    )
    maps = metadata.parse_activation_content(
        metadata.create_activation_map_metadata(
            INFO, "cell_state", 1, 4, (1, 2)
        ).plugin_data.content
    )

    assert stats == metadata.ActivationStatsContent(INFO, "forget", 5, (0.1, 0.9))
    assert stats.vector_length == len(metadata.ACTIVATION_STAT_FIELDS) + 3 * 2 + 5
    assert maps == metadata.ActivationMapContent(INFO, "cell_state", 1, 4, (1, 2))
    assert maps.grid == (2, 2)
    with pytest.raises(metadata.FormatError, match="step 3: activation stats tensor has shape"):
        metadata.parse_activation_stats_series([(3, np.zeros(stats.vector_length + 1))], stats)
    with pytest.raises(metadata.FormatError, match="dtype"):
        metadata.parse_activation_map_tensor(np.array(["a"]), maps)
    mask = metadata.ActivationMapContent(INFO, None, 1, 4, (1, 2))
    assert metadata.parse_activation_map_tensor(np.ones(2), mask).shape == (2,)
    assert metadata.activation_tag(mask) == "weightgates/activation_masks/lstm/forward"


def test_activation_tags_differ_from_each_other_and_from_slice_tags():
    stacked = metadata.ActivationInfo(**{**INFO.to_json(), "cell": 1, "names": INFO.names})
    tags = {
        metadata.activation_stats_tag(INFO, "forget"),
        metadata.activation_map_tag(INFO, "forget"),
        metadata.activation_histogram_tag(INFO, "forget"),
        metadata.gradient_norms_tag(INFO),
        metadata.activation_mask_tag(INFO),
        metadata.activation_stats_tag(stacked, "forget"),
    }

    assert len(tags) == 6
    assert metadata.activation_stats_tag(stacked, "forget") == (
        "weightgates/activation_stats/lstm/forward/cell_1/forget"
    )
    assert not os.path.commonprefix(sorted(tags)).endswith("activation_")
