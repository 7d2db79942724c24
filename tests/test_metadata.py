"""Tests of the format's parse functions on their own, and of the slice description of format
version 2 with what a reader assumes for version 1 (the reader's tests, `test_fuzz` above
all, feed them bad records through TensorBoard). The writer's own snapshot reduction is the
reference for the snapshot layout the parser expects."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tensorboard_plugin_weightgates.format import axes, metadata, snapshot
from tensorboard_plugin_weightgates.format.gate_names import head_names

INFO = metadata.SliceInfo(
    layer="lstm",
    layer_type="LSTM",
    order=0,
    direction="forward",
    cell=None,
    bidirectional=False,
    kernel="kernel",
    gates=("input", "forget"),
    kernel_order=0,
    axes=("input", "unit"),
    variable_shape=(3, 4),
    gate_index=1,
    shape=(3, 2),
)


def _content(summary_metadata, **changes) -> bytes:
    content = json.loads(summary_metadata.plugin_data.content)
    content.update(changes)
    return json.dumps(content).encode("utf-8")


def test_contents_round_trip():
    stats = metadata.create_stats_metadata(INFO, "gradients", 12, 1e-8)
    snap = metadata.create_snapshot_metadata(INFO, "weights", 4, (2, 1))

    assert metadata.parse_stats_content(stats.plugin_data.content) == metadata.StatsContent(
        INFO, "gradients", 12, 1e-8
    )
    assert metadata.parse_snapshot_content(snap.plugin_data.content) == (
        metadata.SnapshotContent(INFO, "weights", 4, (2, 1))
    )


@pytest.mark.parametrize(
    "shape", [(), (5,), (3, 4), (2, 3, 7), (0, 4), (4, 0), (64, 1024), (1, 100000)]
)
@pytest.mark.parametrize("max_cells", [1, 7, 128 * 128])
def test_snapshot_layout_is_the_writers(shape, max_cells):
    """The writer's block passes the parser's checks, and its reduced snapshot has the grid
    the parser expects."""
    info = dataclasses.replace(
        INFO,
        layer_type="Dense",
        gates=(None,),
        gate_index=0,
        shape=shape,
        axes=axes.unknown(len(shape)),
        variable_shape=shape,
    )
    block = snapshot.snapshot_block(shape, max_cells)
    summary_metadata = metadata.create_snapshot_metadata(info, "weights", max_cells, block)
    reduced = snapshot.reduce_snapshot(np.ones(shape, np.float32), max_cells)

    content = metadata.parse_snapshot_content(summary_metadata.plugin_data.content)

    assert metadata.snapshot_grid(content) == reduced.shape[1:]
    np.testing.assert_array_equal(metadata.parse_snapshot_tensor(reduced, content), reduced)
    rows, cols = metadata.matrix_shape(shape)
    assert rows * cols == int(np.prod(shape))


def test_snapshot_tensor_of_another_grid_or_dtype_is_refused():
    content = metadata.SnapshotContent(INFO, "weights", 100, (1, 1))

    with pytest.raises(metadata.FormatError, match=r"has shape \(2, 2, 3\), expected \(2, 3, 2\)"):
        metadata.parse_snapshot_tensor(np.zeros((2, 2, 3)), content)
    with pytest.raises(metadata.FormatError, match="has dtype <U1"):
        metadata.parse_snapshot_tensor(np.full((2, 3, 2), "x"), content)
    with pytest.raises(metadata.FormatError, match="expected \\[2, rows, cols\\]"):
        metadata.parse_snapshot_tensor(np.zeros((3, 1, 1)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.uint8])
def test_stats_vector_of_any_real_dtype_is_float64(dtype):
    values = np.arange(metadata.stats_vector_length(3)).astype(dtype)

    vector = metadata.parse_stats_vector(values, 3)

    assert vector.dtype == np.float64
    np.testing.assert_array_equal(vector, values)


@pytest.mark.parametrize(
    "values, message",
    [
        (np.zeros(17), r"shape \(17,\), expected \(18,\)"),
        (np.zeros((18, 1)), r"shape \(18, 1\)"),
        (np.zeros(18, bool), "dtype bool"),
        (np.zeros(18, np.complex128), "dtype complex128"),
        (np.array([b"x"] * 18, dtype=object), "dtype object"),
    ],
)
def test_stats_vector_of_another_layout_is_refused(values, message):
    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_stats_vector(values, 3)


def test_messages_about_huge_fields_stay_short():
    stats = metadata.create_stats_metadata(INFO, "weights", 12, 0.0)
    content = json.loads(stats.plugin_data.content)
    content["slice"]["layer"] = [0] * 100_000

    with pytest.raises(metadata.FormatError) as raised:
        metadata.parse_stats_content(json.dumps(content).encode())

    assert "layer must be a non-empty string" in str(raised.value)
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"version": 99}, "version 99 is not supported .*; upgrade"),
        ({"version": 0}, r"version 0 is not supported \(this weightgates reads versions 1, 2\)$"),
        ({"bins": 0}, "bins must be an integer from 1"),
        ({"near_zero": float("inf")}, "near_zero must be a finite number >= 0.0, got inf"),
        ({"near_zero": False}, "near_zero must be a finite number"),
    ],
)
def test_out_of_range_content_is_refused_naming_the_field(changes, message):
    content = _content(metadata.create_stats_metadata(INFO, "weights", 12, 0.0), **changes)

    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_stats_content(content)


HEAD = metadata.SliceInfo(
    layer="encoder/attention",
    layer_type="MultiHeadAttention",
    order=3,
    direction="forward",
    cell=None,
    bidirectional=False,
    kernel="attention_output/kernel",
    gates=head_names(2),
    kernel_order=6,
    axes=(axes.OUTPUT, axes.HEAD_DIM),
    variable_shape=(2, 4, 8),
    gate_index=1,
    shape=(8, 4),
)


def _v2_content(info: metadata.SliceInfo = HEAD, **slice_changes) -> bytes:
    content = json.loads(
        metadata.create_stats_metadata(info, "weights", 8, 0.0).plugin_data.content
    )
    content["slice"].update(slice_changes)
    return json.dumps(content).encode("utf-8")


def test_a_slice_survives_its_content():
    parsed = metadata.parse_stats_content(_v2_content())
    assert parsed.info == HEAD
    assert (parsed.info.gate, parsed.bins, parsed.kind) == ("head_1", 8, "weights")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"axes": ["output"]}, "do not name the 2 axes"),
        ({"axes": "output"}, "axes must be a JSON array"),
        ({"axes": ["output", 3]}, "axes must be a non-empty string, got 3"),
        ({"variable_shape": [2, -4, 8]}, "variable_shape must be an integer >= 0, got -4"),
        ({"kernel_order": -1}, "kernel_order must be an integer >= 0"),
        ({"kernel_order": True}, "kernel_order must be an integer >= 0"),
        ({"bidirectional": "no"}, "bidirectional must be true or false"),
        ({"axes": None}, "axes must be a JSON array"),
    ],
)
def test_malformed_slice_fields_of_version_2_are_format_errors(changes, message):
    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_stats_content(_v2_content(**changes))


def test_a_version_2_slice_without_its_new_fields_is_a_format_error():
    content = json.loads(_v2_content())
    del content["slice"]["axes"]
    with pytest.raises(metadata.FormatError, match="malformed slice description"):
        metadata.parse_stats_content(json.dumps(content).encode())


def test_version_1_slices_get_defaults():
    old = {
        "version": 1,
        "record": "snapshot",
        "kind": "gradients",
        "max_cells": 100,
        "block": [1, 1],
        "slice": {
            "layer": "conv",
            "layer_type": "ConvLSTM2D",
            "order": 0,
            "direction": "backward",
            "cell": None,
            "kernel": "recurrent_kernel",
            "gates": ["input", "forget", "cell", "output"],
            "gate_index": 2,
            "gate": "cell",
            "shape": [3, 3, 2, 2],
        },
    }
    info = metadata.parse_snapshot_content(json.dumps(old).encode()).info
    assert (info.axes, info.variable_shape, info.kernel_order, info.bidirectional) == (
        ("offset_0", "offset_1", "hidden_channel", "unit"),
        (3, 3, 2, 8),
        None,
        True,
    )


def test_unknown_versions_are_refused():
    content = json.loads(_v2_content())
    for version in (0, 3, "2", True, None):
        content["version"] = version
        with pytest.raises(metadata.FormatError, match="reads versions 1, 2"):
            metadata.parse_stats_content(json.dumps(content).encode())


@pytest.mark.parametrize(
    "kernel, shape, counts",
    [
        ("kernel", (3, 4), True),
        ("query/kernel", (4, 2), True),
        ("embeddings", (7, 3), True),
        ("bias", (4,), False),
        ("input_bias", (4,), False),
        ("key/bias", (2, 4), False),  # unsplit, as format version 1 wrote it
        ("gamma", (4,), False),
        ("scale", (), False),
    ],
)
def test_dead_units_are_counted_for_kernels_only(kernel, shape, counts):
    info = dataclasses.replace(
        HEAD, kernel=kernel, shape=shape, axes=axes.unknown(len(shape)), gates=(None,), gate_index=0
    )
    assert info.counts_dead_units is counts


def test_axis_names_by_layer_type_and_kernel():
    assert axes.kernel_axes("kernel", 2, {"GRUCell"}) == ("input", "unit")
    assert axes.kernel_axes("kernel", 3, {"ConvLSTM1D"}) == ("offset_0", "input_channel", "unit")
    assert axes.kernel_axes("kernel", 4, {"Conv2D", "Conv2DTranspose"}) == axes.unknown(4)
    assert axes.kernel_axes("kernel", 2, {"MyLayer"}) == ("axis_0", "unit")
    assert axes.kernel_axes("attention_output/bias", 1, {"MultiHeadAttention"}) == ("unit",)
    assert axes.kernel_axes("scale", 0, set()) == ()
    assert head_names(3) == ("head_0", "head_1", "head_2")
