"""Tests of the format's parse functions on their own (the reader's tests, `test_fuzz` above
all, feed them bad records through TensorBoard). The writer's own snapshot reduction is the
reference for the snapshot layout the parser expects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tensorboard_plugin_weightgates.format import metadata, snapshot

INFO = metadata.SliceInfo(
    "lstm", "LSTM", 0, "forward", None, "kernel", ("input", "forget"), 1, (3, 2)
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
    info = metadata.SliceInfo("dense", "Dense", 0, "forward", None, "kernel", (None,), 0, shape)
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
        ({"version": 0}, r"version 0 is not supported \(this weightgates reads version 1\)$"),
        ({"bins": 0}, "bins must be an integer from 1"),
        ({"near_zero": float("inf")}, "near_zero must be a finite number >= 0.0, got inf"),
        ({"near_zero": False}, "near_zero must be a finite number"),
    ],
)
def test_out_of_range_content_is_refused_naming_the_field(changes, message):
    content = _content(metadata.create_stats_metadata(INFO, "weights", 12, 0.0), **changes)

    with pytest.raises(metadata.FormatError, match=message):
        metadata.parse_stats_content(content)
