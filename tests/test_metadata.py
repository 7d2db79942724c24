"""The slice description of format version 2, and what a reader assumes for version 1.

Framework-free, like `format`: contents are built and parsed as bytes, never through TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tensorboard_plugin_weightgates.format import axes, metadata
from tensorboard_plugin_weightgates.format.gate_names import head_names

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


def _content(info: metadata.SliceInfo = HEAD, **slice_changes) -> bytes:
    content = json.loads(
        metadata.create_stats_metadata(info, "weights", 8, 0.0).plugin_data.content
    )
    content["slice"].update(slice_changes)
    return json.dumps(content).encode("utf-8")


def test_a_slice_survives_its_content():
    parsed = metadata.parse_stats_content(_content())
    assert parsed.info == HEAD
    assert (parsed.info.gate, parsed.bins, parsed.kind) == ("head_1", 8, "weights")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"axes": ["output"]}, "do not name the 2 axes"),
        ({"axes": "output"}, "axes must be a list"),
        ({"axes": ["output", 3]}, "axes must be a list"),
        ({"variable_shape": [2, -4, 8]}, "variable_shape must be a list of sizes"),
        ({"kernel_order": -1}, "kernel_order must be an integer >= 0"),
        ({"kernel_order": True}, "kernel_order must be an integer >= 0"),
        ({"bidirectional": "no"}, "bidirectional must be true or false"),
        ({"axes": None}, "axes must be a list"),
    ],
)
def test_malformed_slice_fields_of_version_2_are_format_errors(changes, message):
    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_stats_content(_content(**changes))


def test_a_version_2_slice_without_its_new_fields_is_a_format_error():
    content = json.loads(_content())
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
    content = json.loads(_content())
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
